//! Groups and memberships (SPEC §6): the creator is ADMIN; members read and post, ADMINs
//! manage. A group the caller is not a member of is "Group not found" (its existence is not
//! revealed); a member who is not ADMIN doing an ADMIN action gets 403.

use serde_json::json;

use super::{Chat, ChatError, Group, GroupChanges, GroupDetail, GroupListItem, Member, Named, NewGroup, Role, rooms};
use crate::store::{
    self,
    chat::{MemberRecord, Removal},
};

/// The longest group name and description, in characters (Hestia's rules).
pub const MAX_NAME_CHARS: usize = 100;
pub const MAX_DESCRIPTION_CHARS: usize = 500;

pub(super) const GROUP_NOT_FOUND: ChatError = ChatError::NotFound("Group not found");
const ADMIN_REQUIRED: ChatError = ChatError::Forbidden("Admin access required");
const NAME_TAKEN: ChatError = ChatError::Conflict("You already have a group with this name");

fn check_name(name: &str) -> Result<String, ChatError> {
    let name = name.trim();
    if name.is_empty() || name.chars().count() > MAX_NAME_CHARS || name.contains('\0') {
        return Err(ChatError::Invalid("Group name must be from 1 to 100 characters."));
    }
    Ok(name.to_owned())
}

fn check_description(d: &str) -> Result<String, ChatError> {
    if d.chars().count() > MAX_DESCRIPTION_CHARS || d.contains('\0') {
        return Err(ChatError::Invalid("Description must be at most 500 characters."));
    }
    Ok(d.to_owned())
}

fn name_conflict(e: store::Error) -> ChatError {
    match e {
        store::Error::Conflict(_) => NAME_TAKEN,
        store::Error::NotFound => GROUP_NOT_FOUND,
        e => e.into(),
    }
}

impl Chat {
    /// Creates a group with `me` as its ADMIN and tells `me`'s sockets (`groupCreated`).
    pub async fn create_group(&self, me: i64, new: NewGroup) -> Result<Group, ChatError> {
        let name = check_name(new.name.as_deref().unwrap_or_default())?;
        let description = new.description.as_deref().map(check_description).transpose()?;
        let record =
            match self.store().insert_group(me, &name, description.as_deref(), new.is_private.unwrap_or(false)).await {
                Ok(record) => record,
                Err(e) => return Err(self.recheck(name_conflict(e), me, Named::Nothing).await),
            };
        let group = Group::from(record);
        self.join_group_room(me, group.id);
        self.publish(rooms::user(me), "groupCreated", &group);
        Ok(group)
    }

    /// The groups `me` belongs to.
    pub async fn groups(&self, me: i64) -> Result<Vec<GroupListItem>, ChatError> {
        let rows = self.store().groups_of(me).await?;
        Ok(rows
            .into_iter()
            .map(|r| GroupListItem {
                id: r.group.id,
                name: r.group.name,
                description: r.group.description,
                is_private: r.group.is_private,
                member_count: r.member_count,
                role: Role::from_stored(&r.role),
                joined_at: r.joined_at,
                created_at: r.group.created_at,
                created_by: r.group.created_by,
                creator_username: r.creator_username,
            })
            .collect())
    }

    /// One group with its members, for a member.
    pub async fn group(&self, me: i64, group_id: i64) -> Result<GroupDetail, ChatError> {
        let mine = self.membership(me, group_id).await?;
        let group = self.store().group(group_id).await.map_err(name_conflict)?;
        let members: Vec<Member> = self.store().members(group_id).await?.into_iter().map(Member::from).collect();
        let creator_username = match self.store().chat_user(group.created_by).await {
            Ok(u) => u.username,
            Err(store::Error::NotFound) => String::new(),
            Err(e) => return Err(e.into()),
        };
        Ok(GroupDetail {
            id: group.id,
            name: group.name,
            description: group.description,
            is_private: group.is_private,
            created_at: group.created_at,
            created_by: group.created_by,
            creator_username,
            member_count: members.len() as i64,
            message_count: self.store().group_message_count(group_id).await?,
            user_role: Role::from_stored(&mine.role),
            members,
        })
    }

    /// Changes name, description or privacy (ADMINs); tells the group (`groupUpdated`).
    pub async fn update_group(&self, me: i64, group_id: i64, changes: GroupChanges) -> Result<Group, ChatError> {
        self.admin(me, group_id).await?;
        let mut group = self.store().group(group_id).await.map_err(name_conflict)?;
        if let Some(name) = &changes.name {
            group.name = check_name(name)?;
        }
        if let Some(description) = &changes.description {
            group.description = description.as_deref().map(check_description).transpose()?;
        }
        if let Some(is_private) = changes.is_private {
            group.is_private = is_private;
        }
        self.store().update_group(&group).await.map_err(name_conflict)?;
        let group = Group::from(group);
        self.publish(
            rooms::group(group_id),
            "groupUpdated",
            &json!({
                "id": group.id,
                "name": group.name,
                "description": group.description,
                "isPrivate": group.is_private,
                "updatedBy": me,
            }),
        );
        Ok(group)
    }

    /// Adds `user` (ADMINs; any existing user); puts its sockets in the room, then tells the
    /// group (`memberAdded`).
    pub async fn add_member(&self, me: i64, group_id: i64, user: i64, role: Option<Role>) -> Result<Member, ChatError> {
        self.admin(me, group_id).await?;
        let username = self.user(user).await?.username;
        let role = role.unwrap_or(Role::Member);
        let joined_at = match self.store().insert_member(group_id, user, role.as_str()).await {
            Ok(joined_at) => joined_at,
            Err(store::Error::Conflict(_)) => return Err(ChatError::Conflict("User is already a member")),
            Err(e) => return Err(self.recheck(e.into(), me, Named::User(user, "User not found")).await),
        };
        let member = Member { user_id: user, username, role, joined_at };
        self.join_group_room(user, group_id);
        // Hestia's payload plus `groupId`: a socket in several groups can tell which one.
        let mut event = json!(member);
        event["groupId"] = json!(group_id);
        self.publish(rooms::group(group_id), "memberAdded", &event);
        Ok(member)
    }

    /// Removes `user` (ADMINs, never themselves); tells the group (`memberRemoved`), the
    /// removed user included, then takes its sockets out of the room.
    pub async fn remove_member(&self, me: i64, group_id: i64, user: i64) -> Result<(), ChatError> {
        self.admin(me, group_id).await?;
        if user == me {
            return Err(ChatError::Forbidden("Admins cannot remove themselves"));
        }
        match self.store().delete_member_as(group_id, me, user).await? {
            Removal::Removed => {}
            Removal::NotMember => return Err(ChatError::NotFound("User is not a member")),
            // Removed or demoted since the check above (another ADMIN at the same moment).
            Removal::NotAdmin => return Err(self.admin(me, group_id).await.err().unwrap_or(ADMIN_REQUIRED)),
        }
        self.publish(rooms::group(group_id), "memberRemoved", &json!({ "userId": user, "groupId": group_id }));
        self.leave_group_room(user, group_id);
        Ok(())
    }

    /// The groups `me` is in (the socket joins their rooms at connect).
    pub async fn group_ids(&self, me: i64) -> Result<Vec<i64>, ChatError> {
        Ok(self.store().group_ids_of(me).await?)
    }

    pub async fn is_member(&self, me: i64, group_id: i64) -> Result<bool, ChatError> {
        Ok(self.store().membership(group_id, me).await?.is_some())
    }

    /// `me`'s membership, or "Group not found".
    async fn membership(&self, me: i64, group_id: i64) -> Result<MemberRecord, ChatError> {
        self.store().membership(group_id, me).await?.ok_or(GROUP_NOT_FOUND)
    }

    /// `me`'s membership when it is an ADMIN's; 404 for a non-member, 403 for a MEMBER.
    async fn admin(&self, me: i64, group_id: i64) -> Result<MemberRecord, ChatError> {
        let mine = self.membership(me, group_id).await?;
        if Role::from_stored(&mine.role) != Role::Admin {
            return Err(ADMIN_REQUIRED);
        }
        Ok(mine)
    }
}
