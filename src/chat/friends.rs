//! Friendships and friend requests (SPEC §6, CONTRACTS §3.3). A request is keyed by its
//! sender: accepting or declining names the sender's user id, as Hestia's routes do.

use super::{Chat, ChatError, Named, UserRef};
use crate::store;

impl Chat {
    /// `me`'s friends: `[{id, username}]`.
    pub async fn friends(&self, me: i64) -> Result<Vec<UserRef>, ChatError> {
        Ok(self.store().friends(me).await?.into_iter().map(UserRef::from).collect())
    }

    /// The senders of pending requests to `me`.
    pub async fn friend_requests(&self, me: i64) -> Result<Vec<UserRef>, ChatError> {
        Ok(self.store().friend_requests_to(me).await?.into_iter().map(UserRef::from).collect())
    }

    /// Asks `to` to be friends. 400 to oneself, to a friend, or when a request exists in
    /// either direction (as Hestia); 404 for an unknown user.
    pub async fn request_friend(&self, me: i64, to: i64) -> Result<(), ChatError> {
        if me == to {
            return Err(ChatError::Invalid("Cannot send request to yourself"));
        }
        self.user(to).await?;
        if self.store().are_friends(me, to).await? {
            return Err(ChatError::Invalid("Already friends"));
        }
        const EXISTS: ChatError = ChatError::Invalid("Friend request already exists");
        if self.store().friend_request_exists(to, me).await? {
            return Err(EXISTS);
        }
        match self.store().insert_friend_request(me, to).await {
            Ok(()) => Ok(()),
            Err(store::Error::Conflict(_)) => Err(EXISTS),
            Err(e) => Err(self.recheck(e.into(), me, Named::User(to, "User not found")).await),
        }
    }

    /// Accepts `sender`'s request: both become friends.
    pub async fn accept_friend(&self, me: i64, sender: i64) -> Result<(), ChatError> {
        match self.store().accept_friend_request(sender, me).await {
            Ok(()) => Ok(()),
            Err(e) => {
                Err(self.recheck(request_not_found(e), me, Named::User(sender, "Friend request not found")).await)
            }
        }
    }

    /// Declines (deletes) `sender`'s request; 404 when there is none.
    pub async fn decline_friend(&self, me: i64, sender: i64) -> Result<(), ChatError> {
        self.store().delete_friend_request(sender, me).await.map_err(request_not_found)
    }

    /// Ends a friendship on both sides; 404 when they were not friends.
    pub async fn remove_friend(&self, me: i64, other: i64) -> Result<(), ChatError> {
        self.store().delete_friendship(me, other).await.map_err(|e| match e {
            store::Error::NotFound => ChatError::NotFound("Friend not found"),
            e => e.into(),
        })
    }
}

fn request_not_found(e: store::Error) -> ChatError {
    match e {
        store::Error::NotFound => ChatError::NotFound("Friend request not found"),
        e => e.into(),
    }
}
