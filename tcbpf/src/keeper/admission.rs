//! Who gets a connection to the keeper: the limits, and the decision for
//! one new connection given what is open. Pure: counts in, a decision out;
//! the server does the accepting, answering and closing.
//!
//! Root and the users the policy gives `rw` are *trusted*: never limited
//! per user, and when the keeper is full (or at its open-files limit) a
//! trusted client takes the place of the oldest untrusted connection.
//! Everyone else holds at most [`MAX_PER_USER`] connections, and all of
//! them together [`MAX_UNTRUSTED`]; more are answered "busy".

/// Connections open at once at most.
pub const MAX_CONNECTIONS: usize = 1024;
/// Connections one untrusted user (no `rw` in the policy) may hold at once.
pub const MAX_PER_USER: usize = 16;
/// Connections all untrusted users together may hold at once.
pub const MAX_UNTRUSTED: usize = 256;

/// What is open when a new connection arrives.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Open {
    /// Every connection.
    pub total: usize,
    /// Connections of untrusted users.
    pub untrusted: usize,
    /// Connections of the new client's user.
    pub of_user: usize,
}

/// The decision for one new connection.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Admission {
    /// Keep it.
    Admit,
    /// Close the oldest untrusted connection (told "busy"), keep this one.
    EvictOldestUntrusted,
    /// Answer "busy: REASON" and close it.
    Busy(String),
}

/// The decision for a new connection of `uid` (`trusted`: root or a
/// policy `rw` user), given what is `open`; `at_fd_limit` when it could
/// only be accepted with the keeper's spare descriptor.
pub fn decide(uid: u32, trusted: bool, at_fd_limit: bool, open: Open) -> Admission {
    let full = at_fd_limit || open.total >= MAX_CONNECTIONS;
    let why_full = || {
        if at_fd_limit {
            "the keeper is at its open-files limit".to_string()
        } else {
            format!("{MAX_CONNECTIONS} connections open")
        }
    };
    if trusted {
        return if !full {
            Admission::Admit
        } else if open.untrusted > 0 {
            Admission::EvictOldestUntrusted
        } else {
            Admission::Busy(why_full())
        };
    }
    if full {
        Admission::Busy(why_full())
    } else if open.of_user >= MAX_PER_USER {
        Admission::Busy(format!(
            "uid {uid} has {MAX_PER_USER} connections open, the most for a user the policy gives no 'rw'"
        ))
    } else if open.untrusted >= MAX_UNTRUSTED {
        Admission::Busy(format!(
            "{MAX_UNTRUSTED} connections of users the policy gives no 'rw' are open"
        ))
    } else {
        Admission::Admit
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn open(total: usize, untrusted: usize, of_user: usize) -> Open {
        Open {
            total,
            untrusted,
            of_user,
        }
    }

    #[test]
    fn untrusted_users_are_limited_per_user_and_together() {
        assert_eq!(decide(7, false, false, open(20, 15, 15)), Admission::Admit);
        let Admission::Busy(why) = decide(7, false, false, open(20, 16, 16)) else {
            panic!("the 17th connection of one user")
        };
        assert_eq!(
            why,
            "uid 7 has 16 connections open, the most for a user the policy gives no 'rw'"
        );
        let Admission::Busy(why) = decide(7, false, false, open(300, 256, 0)) else {
            panic!("the 257th untrusted connection")
        };
        assert!(why.contains("256 connections of users"), "{why}");
        assert!(matches!(
            decide(7, false, true, open(3, 3, 0)),
            Admission::Busy(w) if w.contains("open-files limit")
        ));
    }

    #[test]
    fn trusted_users_are_never_shut_out_while_an_untrusted_connection_is_open() {
        // Not limited per user or by the untrusted share.
        assert_eq!(
            decide(0, true, false, open(500, 256, 200)),
            Admission::Admit
        );
        // Full, or at the open-files limit: someone untrusted makes room.
        assert_eq!(
            decide(0, true, false, open(MAX_CONNECTIONS, 1, 0)),
            Admission::EvictOldestUntrusted
        );
        assert_eq!(
            decide(1000, true, true, open(6, 6, 0)),
            Admission::EvictOldestUntrusted
        );
        // Nobody to make room: busy, with the reason.
        assert_eq!(
            decide(0, true, true, open(6, 0, 6)),
            Admission::Busy("the keeper is at its open-files limit".into())
        );
        assert_eq!(
            decide(0, true, false, open(MAX_CONNECTIONS, 0, 9)),
            Admission::Busy("1024 connections open".into())
        );
    }
}
