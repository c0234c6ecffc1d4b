//! The chat's SQL on each database (called from `store_backends` for SQLite, PostgreSQL and
//! MariaDB): friends, groups, batched message writes, history pages, account deletion.

use std::sync::Arc;

use switchboard::broker::MemoryBroker;
use switchboard::chat::{Chat, ChatError, GroupChanges, NewGroup, Page, Role, Via};
use switchboard::config::{ChatConfig, Secret};
use switchboard::core::{OutboxLimits, Realtime};
use switchboard::store::Store;
use switchboard::store::accounts::NewAccount;

async fn account(store: &Store, username: &str) -> i64 {
    let new = NewAccount {
        username: Some(username.into()),
        email: None,
        name: username.into(),
        password_hash: "x".into(),
        is_admin: false,
    };
    store.insert_account(new).await.unwrap().id
}

/// Runs the chat against `store` (migrated, with no chat data yet).
pub async fn exercise(store: &Store) {
    let realtime = Realtime::new(Arc::new(MemoryBroker::new()), OutboxLimits { max_bytes: 1 << 20, max_frames: 64 });
    let config =
        ChatConfig { message_burst: 10_000, encryption_key: Some(Secret("11".repeat(32))), ..ChatConfig::default() };
    let chat = Chat::new(store.clone(), realtime, config, None).unwrap();
    let (a, b, c) = (account(store, "chat_a").await, account(store, "chat_b").await, account(store, "chat_c").await);
    // Usernames are unique whatever their case in the database itself, which is what decides
    // between two registrations racing past the service's check.
    let twin = NewAccount {
        username: Some("Chat_A".into()),
        email: None,
        name: "twin".into(),
        password_hash: "x".into(),
        is_admin: false,
    };
    let twin = store.insert_account(twin).await;
    assert!(matches!(twin, Err(switchboard::store::Error::Conflict(_))), "{:?}", twin.map(|a| a.id));

    chat.request_friend(a, b).await.unwrap();
    assert!(matches!(chat.request_friend(b, a).await, Err(ChatError::Invalid(_))));
    chat.accept_friend(b, a).await.unwrap();
    assert_eq!(chat.friends(a).await.unwrap()[0].id, b);

    // Concurrent sends share transactions; every one is stored once, in id order.
    let sends: Vec<_> = (0..200)
        .map(|i| {
            let chat = chat.clone();
            let (from, to) = if i % 2 == 0 { (a, b) } else { (b, a) };
            tokio::spawn(async move { chat.send_dm(from, to, &format!("dm {i} ✓ 😀")).await.unwrap() })
        })
        .collect();
    let mut sent = Vec::new();
    for s in sends {
        sent.push(s.await.unwrap());
    }
    sent.sort_by_key(|m| m.id);
    let history = chat.dm_history(a, b, Page::default()).await.unwrap();
    assert_eq!(history, sent);
    let page = chat.dm_history(b, a, Page { before: Some(sent[100].id), limit: Some(10) }).await.unwrap();
    assert_eq!(page, sent[90..100]);

    let g = chat
        .create_group(a, NewGroup { name: Some("Ünïcode group".into()), description: None, is_private: Some(true) })
        .await
        .unwrap();
    let dup = chat.create_group(a, NewGroup { name: Some("Ünïcode group".into()), ..Default::default() }).await;
    assert!(matches!(dup, Err(ChatError::Conflict(_))), "{dup:?}");
    chat.add_member(a, g.id, b, None).await.unwrap();
    assert!(matches!(chat.add_member(a, g.id, b, None).await, Err(ChatError::Conflict(_))));
    chat.add_member(a, g.id, c, Some(Role::Admin)).await.unwrap();
    let changes = GroupChanges { description: Some(Some("about".into())), ..Default::default() };
    assert_eq!(chat.update_group(c, g.id, changes).await.unwrap().description.as_deref(), Some("about"));
    let posted = chat.send_group_message(b, g.id, "hello group", Via::Rest).await.unwrap();
    assert_eq!(chat.group_history(c, g.id, Page::default()).await.unwrap(), vec![posted]);
    let listed = chat.groups(b).await.unwrap();
    assert_eq!((listed.len(), listed[0].member_count, listed[0].role), (1, 3, Role::Member));
    let detail = chat.group(b, g.id).await.unwrap();
    assert_eq!((detail.message_count, detail.members.len()), (1, 3));
    // The count is kept with the messages: batched sends to two groups, then an author's
    // deletion (below) takes theirs away.
    let h = chat.create_group(c, NewGroup { name: Some("second".into()), ..Default::default() }).await.unwrap();
    chat.add_member(c, h.id, a, None).await.unwrap();
    let sends: Vec<_> = (0..30)
        .map(|i| {
            let chat = chat.clone();
            let (from, to) = [(a, g.id), (c, g.id), (a, h.id)][i % 3];
            tokio::spawn(async move { chat.send_group_message(from, to, &format!("g {i}"), Via::Rest).await.unwrap() })
        })
        .collect();
    for s in sends {
        s.await.unwrap();
    }
    assert_eq!(chat.group(b, g.id).await.unwrap().message_count, 21);
    assert_eq!(chat.group(c, h.id).await.unwrap().message_count, 10);

    // Two ADMINs removing each other at the same moment: one wins, the group keeps an ADMIN.
    for round in 0..3 {
        let name = format!("duel {round}");
        let r = chat.create_group(b, NewGroup { name: Some(name), ..Default::default() }).await.unwrap();
        chat.add_member(b, r.id, c, Some(Role::Admin)).await.unwrap();
        let (by_b, by_c) = tokio::join!(chat.remove_member(b, r.id, c), chat.remove_member(c, r.id, b));
        assert!(by_b.is_ok() != by_c.is_ok(), "exactly one removal: {by_b:?} {by_c:?}");
        let (winner, removed, loser) = if by_b.is_ok() { (b, c, by_c) } else { (c, b, by_b) };
        assert!(matches!(loser, Err(ChatError::NotFound(_))), "the removed one is no member now: {loser:?}");
        let detail = chat.group(winner, r.id).await.unwrap();
        assert_eq!(detail.members.iter().map(|m| (m.user_id, m.role)).collect::<Vec<_>>(), [(winner, Role::Admin)]);
        assert!(matches!(chat.group(removed, r.id).await, Err(ChatError::NotFound(_))));
    }

    chat.socket_connected(a).await.unwrap();
    assert_eq!(chat.user(a).await.unwrap().status, "active");
    chat.set_public_key(a, Some(&"k".repeat(8192))).await.unwrap();
    assert_eq!(chat.user_by_username("CHAT_A").await.unwrap().public_key.map(|k| k.len()), Some(8192));

    chat.delete_user(a).await.unwrap();
    assert!(matches!(chat.user(a).await, Err(ChatError::NotFound(_))));
    assert!(chat.friends(b).await.unwrap().is_empty());
    let detail = chat.group(b, g.id).await.unwrap();
    assert_eq!((detail.created_by, detail.member_count), (c, 2), "the other ADMIN gets the group");
    assert_eq!(detail.message_count, 11, "a's 10 went with it: b's one and c's 10 stay");
    assert_eq!(chat.group(c, h.id).await.unwrap().message_count, 0);
    assert_eq!(chat.group_history(c, g.id, Page::default()).await.unwrap().len(), 11);
    assert!(matches!(chat.dm_history(b, a, Page::default()).await, Err(ChatError::Forbidden(_))));
    chat.delete_user(b).await.unwrap();
    chat.delete_user(c).await.unwrap();
    assert!(store.chat_user(c).await.is_err());
}
