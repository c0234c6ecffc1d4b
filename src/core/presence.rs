//! Presence members of one channel, counted by user_id: two connections of one user are one
//! member (SPEC §3), and only the first join and the last leave are announced.

use std::collections::HashMap;
use std::sync::Arc;

/// One member: what the first connection said about the user, and how many connections of the
/// user are in the channel.
#[derive(Debug, Clone)]
struct Member {
    info: Option<Arc<str>>,
    sockets: u32,
}

/// A presence channel's members, in join order for stable `ids`.
#[derive(Debug, Default)]
pub(crate) struct Members {
    by_user: HashMap<Arc<str>, Member>,
    order: Vec<Arc<str>>,
}

/// A presence channel as a new subscriber sees it.
#[derive(Debug, Clone, Default)]
pub struct PresenceSnapshot {
    /// `(user_id, user_info as JSON text)` in join order.
    pub members: Vec<(Arc<str>, Option<Arc<str>>)>,
}

impl Members {
    pub fn len(&self) -> usize {
        self.by_user.len()
    }

    pub fn contains(&self, user: &str) -> bool {
        self.by_user.contains_key(user)
    }

    /// Adds a connection of `user`; true when the user was not a member before.
    pub fn join(&mut self, user: &Arc<str>, info: Option<Arc<str>>) -> bool {
        match self.by_user.get_mut(user) {
            Some(m) => {
                m.sockets += 1;
                false
            }
            None => {
                self.by_user.insert(user.clone(), Member { info, sockets: 1 });
                self.order.push(user.clone());
                true
            }
        }
    }

    /// Removes a connection of `user`; true when it was the user's last.
    pub fn leave(&mut self, user: &str) -> bool {
        let Some(m) = self.by_user.get_mut(user) else {
            return false;
        };
        m.sockets -= 1;
        if m.sockets > 0 {
            return false;
        }
        self.by_user.remove(user);
        self.order.retain(|u| &**u != user);
        true
    }

    pub fn snapshot(&self) -> PresenceSnapshot {
        PresenceSnapshot {
            members: self.order.iter().map(|u| (u.clone(), self.by_user.get(u).and_then(|m| m.info.clone()))).collect(),
        }
    }

    pub fn user_ids(&self) -> Vec<Arc<str>> {
        self.order.clone()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counted_by_user() {
        let mut m = Members::default();
        let u: Arc<str> = "u1".into();
        assert!(m.join(&u, Some("{}".into())));
        assert!(!m.join(&u, None));
        assert_eq!(m.len(), 1);
        assert!(!m.leave("u1"));
        assert!(m.leave("u1"));
        assert_eq!(m.len(), 0);
        assert!(!m.leave("u1"));
    }
}
