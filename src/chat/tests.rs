//! The chat rules against a real (SQLite) store: friends, DMs, groups and roles, histories,
//! encryption at rest, rate limits, account deletion.

use std::sync::Arc;

use super::*;
use crate::broker::MemoryBroker;
use crate::config::{ChatConfig, Secret};
use crate::core::OutboxLimits;
use crate::store::accounts::NewAccount;

const KEY: &str = "000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f";

async fn chat_with(config: ChatConfig) -> (Chat, Store, tempfile::TempDir) {
    let (store, dir) = crate::store::temp_store().await;
    let realtime = Realtime::new(Arc::new(MemoryBroker::new()), OutboxLimits { max_bytes: 1 << 20, max_frames: 64 });
    (Chat::new(store.clone(), realtime, config, None).unwrap(), store, dir)
}

async fn chat() -> (Chat, Store, tempfile::TempDir) {
    chat_with(ChatConfig::default()).await
}

async fn account(store: &Store, username: &str) -> i64 {
    store
        .insert_account(NewAccount {
            username: Some(username.into()),
            email: None,
            name: username.into(),
            password_hash: "x".into(),
            is_admin: false,
        })
        .await
        .unwrap()
        .id
}

async fn friends(chat: &Chat, a: i64, b: i64) {
    chat.request_friend(a, b).await.unwrap();
    chat.accept_friend(b, a).await.unwrap();
}

fn group(name: &str) -> NewGroup {
    NewGroup { name: Some(name.into()), description: Some("d".into()), is_private: Some(true) }
}

#[tokio::test]
async fn friend_requests_follow_hestias_rules() {
    let (chat, store, _d) = chat().await;
    let (a, b, c) = (account(&store, "alice").await, account(&store, "bob").await, account(&store, "carol").await);
    assert!(matches!(chat.request_friend(a, a).await, Err(ChatError::Invalid("Cannot send request to yourself"))));
    assert!(matches!(chat.request_friend(a, 999).await, Err(ChatError::NotFound("User not found"))));
    chat.request_friend(a, b).await.unwrap();
    assert!(matches!(chat.request_friend(a, b).await, Err(ChatError::Invalid("Friend request already exists"))));
    assert!(
        matches!(chat.request_friend(b, a).await, Err(ChatError::Invalid("Friend request already exists"))),
        "a request to someone whose own request is pending is 400"
    );
    assert_eq!(chat.friend_requests(b).await.unwrap(), vec![UserRef { id: a, username: "alice".into() }]);
    assert!(matches!(chat.accept_friend(a, b).await, Err(ChatError::NotFound("Friend request not found"))));
    chat.accept_friend(b, a).await.unwrap();
    assert!(chat.friend_requests(b).await.unwrap().is_empty());
    assert_eq!(chat.friends(a).await.unwrap(), vec![UserRef { id: b, username: "bob".into() }]);
    assert_eq!(chat.friends(b).await.unwrap(), vec![UserRef { id: a, username: "alice".into() }]);
    assert!(matches!(chat.request_friend(b, a).await, Err(ChatError::Invalid("Already friends"))));

    chat.request_friend(c, a).await.unwrap();
    chat.decline_friend(a, c).await.unwrap();
    assert!(matches!(chat.decline_friend(a, c).await, Err(ChatError::NotFound(_))));
    assert!(matches!(chat.remove_friend(a, c).await, Err(ChatError::NotFound(_))));
    chat.remove_friend(b, a).await.unwrap();
    assert!(chat.friends(a).await.unwrap().is_empty());
}

#[tokio::test]
async fn dms_go_to_friends_only_and_page_through_history() {
    let (chat, store, _d) = chat().await;
    let (a, b, c) = (account(&store, "alice").await, account(&store, "bob").await, account(&store, "carol").await);
    friends(&chat, a, b).await;
    assert!(matches!(chat.send_dm(a, c, "hi").await, Err(ChatError::Forbidden("You can only DM friends"))));
    assert!(matches!(chat.send_dm(a, a, "hi").await, Err(ChatError::Forbidden(_))), "not to oneself");
    assert!(matches!(chat.send_dm(a, 12345, "hi").await, Err(ChatError::NotFound("Recipient not found"))));
    let gone = account(&store, "gone").await;
    friends(&chat, a, gone).await;
    chat.delete_user(gone).await.unwrap();
    assert!(
        matches!(chat.send_dm(a, gone, "hi").await, Err(ChatError::NotFound("Recipient not found"))),
        "a deleted user"
    );
    assert!(matches!(chat.send_dm(a, b, "   ").await, Err(ChatError::Invalid("Content is required"))));

    let mut ids = Vec::new();
    for i in 0..10 {
        let (from, to) = if i % 2 == 0 { (a, b) } else { (b, a) };
        let m = chat.send_dm(from, to, &format!("  m{i} ")).await.unwrap();
        assert_eq!(m.content, format!("m{i}"));
        assert_eq!((m.user_id, m.recipient_id, m.group_id), (from, Some(to), None));
        ids.push(m.id);
    }
    assert!(ids.windows(2).all(|w| w[0] < w[1]));
    let all = chat.dm_history(b, a, Page::default()).await.unwrap();
    assert_eq!(all.iter().map(|m| m.id).collect::<Vec<_>>(), ids, "oldest first");
    assert_eq!(all[1].username, "bob");
    assert_eq!(all[1].recipient_id, Some(a));
    let page = chat.dm_history(a, b, Page { before: Some(ids[6]), limit: Some(3) }).await.unwrap();
    assert_eq!(page.iter().map(|m| m.id).collect::<Vec<_>>(), ids[3..6], "the newest three before");
    assert!(matches!(chat.dm_history(a, b, Page { before: None, limit: Some(0) }).await, Err(ChatError::Invalid(_))));
    assert!(matches!(
        chat.dm_history(a, c, Page::default()).await,
        Err(ChatError::Forbidden("You can only view messages with friends"))
    ));
}

#[tokio::test]
async fn many_concurrent_messages_are_all_stored_once_in_batches() {
    let (chat, store, _d) = chat_with(ChatConfig { message_burst: 1000, ..ChatConfig::default() }).await;
    let (a, b) = (account(&store, "alice").await, account(&store, "bob").await);
    friends(&chat, a, b).await;
    let sends = (0..300).map(|i| {
        let chat = chat.clone();
        tokio::spawn(async move { chat.send_dm(a, b, &format!("m{i}")).await.unwrap().id })
    });
    let mut ids = Vec::new();
    for s in sends {
        ids.push(s.await.unwrap());
    }
    ids.sort_unstable();
    ids.dedup();
    assert_eq!(ids.len(), 300);
    let history = chat.dm_history(a, b, Page::default()).await.unwrap();
    assert_eq!(history.iter().map(|m| m.id).collect::<Vec<_>>(), ids);
}

#[tokio::test]
async fn messages_past_the_bucket_are_refused_and_not_stored() {
    let config = ChatConfig { message_burst: 5, messages_per_second: 1, ..ChatConfig::default() };
    let (chat, store, _d) = chat_with(config).await;
    let (a, b) = (account(&store, "alice").await, account(&store, "bob").await);
    friends(&chat, a, b).await;
    for i in 0..5 {
        chat.send_dm(a, b, &format!("m{i}")).await.unwrap();
    }
    let Err(ChatError::RateLimited(wait)) = chat.send_dm(a, b, "over").await else { panic!("not limited") };
    assert!(wait.as_secs_f64() > 0.0);
    assert_eq!(chat.dm_history(a, b, Page::default()).await.unwrap().len(), 5);
    // Another account has its own bucket.
    chat.send_dm(b, a, "fine").await.unwrap();
}

#[tokio::test]
async fn groups_roles_and_membership() {
    let (chat, store, _d) = chat().await;
    let (a, b, c) = (account(&store, "alice").await, account(&store, "bob").await, account(&store, "carol").await);
    let g = chat.create_group(a, group(" Team ")).await.unwrap();
    assert_eq!((g.name.as_str(), g.is_private, g.created_by), ("Team", true, a));
    assert!(matches!(chat.create_group(a, group("Team")).await, Err(ChatError::Conflict(_))), "unique per creator");
    chat.create_group(b, group("Team")).await.unwrap();
    assert!(matches!(chat.create_group(a, group("  ")).await, Err(ChatError::Invalid(_))));
    assert!(matches!(chat.create_group(a, group(&"x".repeat(101))).await, Err(ChatError::Invalid(_))));

    // Non-members do not learn the group exists; members who are not ADMIN get 403.
    assert!(matches!(chat.group(b, g.id).await, Err(ChatError::NotFound("Group not found"))));
    assert!(matches!(chat.add_member(b, g.id, c, None).await, Err(ChatError::NotFound("Group not found"))));
    let m = chat.add_member(a, g.id, b, None).await.unwrap();
    assert_eq!((m.user_id, m.role), (b, Role::Member));
    assert!(matches!(chat.add_member(a, g.id, b, None).await, Err(ChatError::Conflict("User is already a member"))));
    assert!(matches!(chat.add_member(a, g.id, 999, None).await, Err(ChatError::NotFound("User not found"))));
    assert!(matches!(chat.add_member(b, g.id, c, None).await, Err(ChatError::Forbidden("Admin access required"))));
    assert!(matches!(
        chat.update_group(b, g.id, GroupChanges { name: Some("x".into()), ..Default::default() }).await,
        Err(ChatError::Forbidden(_))
    ));
    let changed = chat
        .update_group(a, g.id, GroupChanges { description: Some(None), is_private: Some(false), ..Default::default() })
        .await
        .unwrap();
    assert_eq!((changed.name.as_str(), changed.description, changed.is_private), ("Team", None, false));

    let detail = chat.group(b, g.id).await.unwrap();
    assert_eq!((detail.member_count, detail.user_role, detail.creator_username.as_str()), (2, Role::Member, "alice"));
    let listed = chat.groups(b).await.unwrap();
    assert_eq!(listed.len(), 2);
    assert!(listed.iter().any(|l| l.id == g.id && l.role == Role::Member && l.member_count == 2));

    let post = chat.send_group_message(b, g.id, "hello", Via::Rest).await.unwrap();
    assert_eq!((post.group_id, post.recipient_id), (Some(g.id), None));
    assert!(matches!(chat.send_group_message(c, g.id, "x", Via::Socket).await, Err(ChatError::NotFound(_))));
    assert!(matches!(chat.group_history(c, g.id, Page::default()).await, Err(ChatError::NotFound(_))));
    assert_eq!(chat.group_history(a, g.id, Page::default()).await.unwrap(), vec![post]);
    assert_eq!(chat.group(a, g.id).await.unwrap().message_count, 1);

    assert!(matches!(
        chat.remove_member(a, g.id, a).await,
        Err(ChatError::Forbidden("Admins cannot remove themselves"))
    ));
    assert!(matches!(chat.remove_member(a, g.id, c).await, Err(ChatError::NotFound("User is not a member"))));
    chat.remove_member(a, g.id, b).await.unwrap();
    assert!(!chat.is_member(b, g.id).await.unwrap());
    assert_eq!(chat.group_ids(a).await.unwrap(), vec![g.id]);
}

#[tokio::test]
async fn contents_are_encrypted_at_rest_with_a_key() {
    let config = ChatConfig { encryption_key: Some(Secret(KEY.into())), ..ChatConfig::default() };
    let (chat, store, _d) = chat_with(config).await;
    let (a, b) = (account(&store, "alice").await, account(&store, "bob").await);
    friends(&chat, a, b).await;
    chat.send_dm(a, b, "top secret words").await.unwrap();
    let (raw, nonce): (String, Option<String>) =
        sqlx::query_as("SELECT content, nonce FROM chat_direct_messages").fetch_one(store.pool()).await.unwrap();
    assert!(!raw.contains("secret"));
    assert!(nonce.is_some());
    assert_eq!(chat.dm_history(b, a, Page::default()).await.unwrap()[0].content, "top secret words");

    // Without the key the stored messages cannot be read, and that is an error, not garbage.
    let realtime = Realtime::new(Arc::new(MemoryBroker::new()), OutboxLimits { max_bytes: 1 << 20, max_frames: 64 });
    let keyless = Chat::new(store.clone(), realtime, ChatConfig::default(), None).unwrap();
    assert!(matches!(keyless.dm_history(a, b, Page::default()).await, Err(ChatError::Decrypt)));
}

#[tokio::test]
async fn profiles_and_statuses() {
    let (chat, store, _d) = chat().await;
    let (a, _b) = (account(&store, "alice").await, account(&store, "bob").await);
    let u = chat.user(a).await.unwrap();
    assert_eq!((u.status.as_str(), u.bio.as_deref()), ("offline", None));
    assert_eq!(chat.set_bio(a, Some("hi")).await.unwrap().bio.as_deref(), Some("hi"));
    assert!(matches!(chat.set_bio(a, Some(&"b".repeat(501))).await, Err(ChatError::Invalid(_))));
    assert!(matches!(chat.set_status(a, "away").await, Err(ChatError::Invalid("Invalid status"))));
    assert!(matches!(chat.set_username(a, "BOB").await, Err(ChatError::Conflict("Username already taken"))));
    assert!(matches!(chat.set_username(a, "ab").await, Err(ChatError::Invalid(_))));
    assert_eq!(chat.set_username(a, "alice2").await.unwrap().username, "alice2");
    assert_eq!(chat.user_by_username("ALICE2").await.unwrap().id, a);
    assert!(matches!(chat.set_public_key(a, Some(&"k".repeat(8193))).await, Err(ChatError::Invalid(_))));
    assert_eq!(chat.set_public_key(a, Some("pk")).await.unwrap().public_key.as_deref(), Some("pk"));

    chat.socket_connected(a).await.unwrap();
    assert_eq!(chat.user(a).await.unwrap().status, "active");
    chat.socket_disconnected(a).await.unwrap();
    assert_eq!(chat.user(a).await.unwrap().status, "offline");
    chat.set_status(a, "do_not_disturb").await.unwrap();
    chat.socket_connected(a).await.unwrap();
    chat.socket_disconnected(a).await.unwrap();
    assert_eq!(chat.user(a).await.unwrap().status, "do_not_disturb", "do_not_disturb stays");

    let (_, replaced) =
        chat.set_picture(a, PictureKind::Avatar, Some(Picture::Upload("/uploads/avatars/a.png".into()))).await.unwrap();
    assert_eq!(replaced, None);
    let (u, replaced) =
        chat.set_picture(a, PictureKind::Avatar, Some(Picture::Url("https://example.com/b.png".into()))).await.unwrap();
    assert_eq!(replaced.as_deref(), Some("/uploads/avatars/a.png"), "the replaced upload is handed back");
    assert_eq!(u.profile_picture_url.as_deref(), Some("https://example.com/b.png"));
    assert!(matches!(
        chat.set_picture(a, PictureKind::Banner, Some(Picture::Url("http://example.com/b.png".into()))).await,
        Err(ChatError::Invalid(_))
    ));
}

#[tokio::test]
async fn deleting_an_account_removes_its_data_and_hands_on_its_groups() {
    let (chat, store, _d) = chat().await;
    let (a, b, c) = (account(&store, "alice").await, account(&store, "bob").await, account(&store, "carol").await);
    friends(&chat, a, b).await;
    chat.request_friend(a, c).await.unwrap();
    chat.send_dm(a, b, "hi").await.unwrap();
    chat.send_dm(b, a, "hey").await.unwrap();
    let shared = chat.create_group(a, group("Shared")).await.unwrap();
    chat.add_member(a, shared.id, c, None).await.unwrap();
    chat.add_member(a, shared.id, b, Some(Role::Admin)).await.unwrap();
    chat.send_group_message(a, shared.id, "from a", Via::Rest).await.unwrap();
    chat.send_group_message(b, shared.id, "from b", Via::Rest).await.unwrap();
    let alone = chat.create_group(a, group("Alone")).await.unwrap();
    // Bob already has a group named "Shared": the one handed on to him is renamed.
    chat.create_group(b, group("Shared")).await.unwrap();
    chat.set_picture(a, PictureKind::Banner, Some(Picture::Upload("/uploads/banners/x.png".into()))).await.unwrap();

    let uploads = chat.delete_user(a).await.unwrap();
    assert_eq!(uploads, vec!["/uploads/banners/x.png".to_owned()]);
    assert!(matches!(chat.user(a).await, Err(ChatError::NotFound(_))));
    assert!(chat.friends(b).await.unwrap().is_empty());
    assert!(chat.friend_requests(c).await.unwrap().is_empty());
    let g = chat.group(c, shared.id).await.unwrap();
    assert_eq!(g.created_by, b, "the oldest other ADMIN gets it, not the older MEMBER");
    assert_eq!(g.name, format!("Shared ({})", shared.id));
    assert_eq!(g.member_count, 2);
    let history = chat.group_history(c, shared.id, Page::default()).await.unwrap();
    assert_eq!(history.iter().map(|m| m.content.as_str()).collect::<Vec<_>>(), ["from b"]);
    let left: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM chat_groups WHERE id = $1")
        .bind(alone.id)
        .fetch_one(store.pool())
        .await
        .unwrap();
    assert_eq!(left, 0, "a group left without members is deleted");
    let dms: i64 =
        sqlx::query_scalar("SELECT COUNT(*) FROM chat_direct_messages").fetch_one(store.pool()).await.unwrap();
    assert_eq!(dms, 0);
    assert!(matches!(chat.delete_user(a).await, Err(ChatError::NotFound(_))));
    // The name is free again.
    account(&store, "alice").await;
}

#[tokio::test]
async fn membership_changes_move_the_users_sockets_and_deletion_closes_them() {
    use crate::core::{ChannelRules, Transport};
    const RULES: ChannelRules = ChannelRules { max_members: 10, max_channels: 100, subscription_count: false };
    let (chat, store, _d) = chat().await;
    let (a, b) = (account(&store, "alice").await, account(&store, "bob").await);
    let rt = chat.0.realtime.clone();
    let app: Arc<str> = APP.into();
    let socket_a = rt.connect(&app, Transport::SocketIo, 0).unwrap();
    let socket_b = rt.connect(&app, Transport::SocketIo, 0).unwrap();
    rt.subscribe(&socket_a, &rooms::user(a), None, &RULES).unwrap();
    rt.subscribe(&socket_b, &rooms::user(b), None, &RULES).unwrap();
    assert!(chat.is_online(b));

    let g = chat.create_group(a, group("G")).await.unwrap();
    assert!(socket_a.is_subscribed(&rooms::group(g.id)), "the creator's sockets are in the room");
    assert!(!socket_b.is_subscribed(&rooms::group(g.id)));
    chat.add_member(a, g.id, b, None).await.unwrap();
    assert!(socket_b.is_subscribed(&rooms::group(g.id)), "an added member's sockets join");
    chat.remove_member(a, g.id, b).await.unwrap();
    assert!(!socket_b.is_subscribed(&rooms::group(g.id)), "a removed member's sockets leave");
    assert!(socket_b.is_subscribed(&rooms::user(b)));

    chat.delete_user(b).await.unwrap();
    assert!(socket_b.closing().is_some(), "a deleted account's sockets are closed");
    assert!(socket_a.closing().is_none());
}

#[tokio::test]
async fn events_reach_the_rooms_with_hestias_payloads() {
    use crate::core::{ChannelRules, Transport};
    const RULES: ChannelRules = ChannelRules { max_members: 10, max_channels: 100, subscription_count: false };
    let (chat, store, _d) = chat().await;
    let (a, b, c) = (account(&store, "alice").await, account(&store, "bob").await, account(&store, "carol").await);
    let rt = chat.0.realtime.clone();
    rt.register_encoder(Transport::SocketIo, |e| {
        let data = match &e.data {
            crate::core::Data::Json(text) | crate::core::Data::Text(text) => text.to_string(),
        };
        bytes::Bytes::from(format!("{}|{}|{data}", e.channel.as_ref().map(|c| c.as_str()).unwrap_or_default(), e.name))
    });
    let app: Arc<str> = APP.into();
    let socket = |user: i64| {
        let conn = rt.connect(&app, Transport::SocketIo, 0).unwrap();
        rt.subscribe(&conn, &rooms::user(user), None, &RULES).unwrap();
        conn
    };
    let (sa, sb, sc) = (socket(a), socket(b), socket(c));
    let events = |conn: &crate::core::ConnHandle| -> Vec<(String, serde_json::Value)> {
        let mut batch = Vec::new();
        conn.drain(&mut batch);
        batch
            .iter()
            .map(|f| {
                let text = String::from_utf8_lossy(f).into_owned();
                let mut parts = text.splitn(3, '|');
                let (_room, name, data) = (parts.next().unwrap(), parts.next().unwrap(), parts.next().unwrap());
                (name.to_owned(), serde_json::from_str(data).unwrap())
            })
            .collect()
    };

    friends(&chat, a, b).await;
    let m = chat.send_dm(a, b, "hi").await.unwrap();
    let dm = serde_json::json!({"id": m.id, "content": "hi", "createdAt": m.created_at, "userId": a, "username": "alice", "recipientId": b});
    assert_eq!(events(&sa), vec![("newDM".to_owned(), dm.clone())]);
    let mut note = dm.clone();
    note["senderId"] = a.into();
    note["senderUsername"] = "alice".into();
    assert_eq!(events(&sb), vec![("newDM".to_owned(), dm), ("dmNotification".to_owned(), note)]);
    assert!(events(&sc).is_empty());

    let g = chat.create_group(a, group("G")).await.unwrap();
    let created = events(&sa);
    assert_eq!(created.len(), 1);
    assert_eq!(created[0].0, "groupCreated");
    assert_eq!((created[0].1["id"].as_i64(), &created[0].1["name"]), (Some(g.id), &serde_json::json!("G")));
    chat.add_member(a, g.id, b, None).await.unwrap();
    let added = events(&sb);
    assert_eq!(added[0].0, "memberAdded", "the new member hears of it too");
    assert_eq!((added[0].1["userId"].as_i64(), added[0].1["groupId"].as_i64()), (Some(b), Some(g.id)));
    assert_eq!(events(&sa).len(), 1);

    chat.send_group_message(b, g.id, "via socket", Via::Socket).await.unwrap();
    chat.send_group_message(a, g.id, "via rest", Via::Rest).await.unwrap();
    let names = |evs: Vec<(String, serde_json::Value)>| {
        evs.into_iter().map(|(n, v)| (n, v["content"].clone())).collect::<Vec<_>>()
    };
    let want = vec![
        ("newGroupMessage".to_owned(), serde_json::json!("via socket")),
        ("newMessage".to_owned(), serde_json::json!("via rest")),
    ];
    assert_eq!(names(events(&sa)), want);
    assert_eq!(names(events(&sb)), want);
    assert!(events(&sc).is_empty(), "not a member");

    chat.update_group(a, g.id, GroupChanges { name: Some("H".into()), ..Default::default() }).await.unwrap();
    let updated = events(&sb);
    assert_eq!(updated[0].0, "groupUpdated");
    assert_eq!((&updated[0].1["name"], updated[0].1["updatedBy"].as_i64()), (&serde_json::json!("H"), Some(a)));
    events(&sa);
    chat.remove_member(a, g.id, b).await.unwrap();
    let removed = events(&sb);
    assert_eq!(removed, vec![("memberRemoved".to_owned(), serde_json::json!({"userId": b, "groupId": g.id}))]);
    chat.send_group_message(a, g.id, "after", Via::Rest).await.unwrap();
    assert!(events(&sb).is_empty(), "a removed member hears no more");
}
