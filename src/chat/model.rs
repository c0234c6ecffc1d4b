//! The chat's types as clients see them: Hestia's shapes with camelCase keys and epoch-ms
//! times (CONTRACTS §3.3), serialized as they are by both surfaces (REST makes picture URLs
//! absolute). Keys may be added to Hestia's shapes, never removed or renamed (SPEC §6).

use serde::{Deserialize, Serialize};

use crate::store::chat::{ChatUserRecord, GroupRecord, MemberRecord, UserRefRecord};

/// The full user object.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct User {
    pub id: i64,
    pub username: String,
    /// What is stored: `/uploads/avatars/<file>` for an upload, or an https URL.
    pub profile_picture_url: Option<String>,
    pub bio: Option<String>,
    pub created_at: i64,
    pub profile_banner_url: Option<String>,
    pub status: String,
    pub public_key: Option<String>,
}

impl From<ChatUserRecord> for User {
    fn from(r: ChatUserRecord) -> Self {
        Self {
            id: r.id,
            username: r.username,
            profile_picture_url: r.picture_url,
            bio: r.bio,
            created_at: r.created_at,
            profile_banner_url: r.banner_url,
            status: r.status,
            public_key: r.public_key,
        }
    }
}

/// `{id, username}`: list entries (friends, requests).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct UserRef {
    pub id: i64,
    pub username: String,
}

impl From<UserRefRecord> for UserRef {
    fn from(r: UserRefRecord) -> Self {
        Self { id: r.id, username: r.username }
    }
}

/// A member's role in a group.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "UPPERCASE")]
pub enum Role {
    Admin,
    Member,
}

impl Role {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Admin => "ADMIN",
            Self::Member => "MEMBER",
        }
    }

    /// A stored role; anything unknown reads as the lesser one.
    pub fn from_stored(s: &str) -> Self {
        if s == "ADMIN" { Self::Admin } else { Self::Member }
    }
}

/// A group row: `{id, name, description, isPrivate, createdBy, createdAt}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct Group {
    pub id: i64,
    pub name: String,
    pub description: Option<String>,
    pub is_private: bool,
    pub created_by: i64,
    pub created_at: i64,
}

impl From<GroupRecord> for Group {
    fn from(r: GroupRecord) -> Self {
        Self {
            id: r.id,
            name: r.name,
            description: r.description,
            is_private: r.is_private,
            created_by: r.created_by,
            created_at: r.created_at,
        }
    }
}

/// An entry of `GET /groups`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct GroupListItem {
    pub id: i64,
    pub name: String,
    pub description: Option<String>,
    pub is_private: bool,
    pub member_count: i64,
    pub role: Role,
    pub joined_at: i64,
    pub created_at: i64,
    pub created_by: i64,
    pub creator_username: String,
}

/// `GET /groups/{id}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct GroupDetail {
    pub id: i64,
    pub name: String,
    pub description: Option<String>,
    pub is_private: bool,
    pub created_at: i64,
    pub created_by: i64,
    pub creator_username: String,
    pub member_count: i64,
    pub message_count: i64,
    pub user_role: Role,
    pub members: Vec<Member>,
}

/// `{userId, username, role, joinedAt}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct Member {
    pub user_id: i64,
    pub username: String,
    pub role: Role,
    pub joined_at: i64,
}

impl From<MemberRecord> for Member {
    fn from(r: MemberRecord) -> Self {
        Self { user_id: r.user_id, username: r.username, role: Role::from_stored(&r.role), joined_at: r.joined_at }
    }
}

/// Every message, REST or socket, live or history: `{id, content, createdAt, userId, username}`
/// plus `groupId` or `recipientId`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct Message {
    pub id: i64,
    pub content: String,
    pub created_at: i64,
    pub user_id: i64,
    pub username: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub group_id: Option<i64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub recipient_id: Option<i64>,
}

/// `POST /groups`: as loosely as clients send it (the service checks it).
#[derive(Debug, Clone, Default, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct NewGroup {
    pub name: Option<String>,
    pub description: Option<String>,
    pub is_private: Option<bool>,
}

/// `PUT /groups/{id}`: `None` leaves a field as it is; a `null` description clears it.
#[derive(Debug, Clone, Default, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct GroupChanges {
    pub name: Option<String>,
    #[serde(default, deserialize_with = "present")]
    pub description: Option<Option<String>>,
    pub is_private: Option<bool>,
}

/// A field that is present (even as `null`) is `Some`.
fn present<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Option<Option<String>>, D::Error> {
    Option::<String>::deserialize(d).map(Some)
}

/// Which picture of a profile.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PictureKind {
    Avatar,
    Banner,
}

/// A picture to set: a file the uploads service stored (`/uploads/avatars/<file>`), or an
/// https URL a client gave.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Picture {
    Upload(String),
    Url(String),
}

/// How a group message arrived, which names its event (SPEC §6): `newGroupMessage` for the
/// socket, `newMessage` for REST.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Via {
    Socket,
    Rest,
}
