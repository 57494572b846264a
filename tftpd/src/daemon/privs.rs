//! Dropping root after binding: setgroups, then setgid, then setuid, in that order, because
//! once the uid is unprivileged the process may no longer change its groups (POSIX), and a
//! process that kept root's supplementary groups would keep their file access.
//!
//! Changing the uid from 0 to non-zero clears the permitted, effective and ambient capability
//! sets (capabilities(7), "Effect of user ID changes on capabilities"), so no capability
//! survives. It runs before the async runtime starts, while the process has one thread.

use nix::unistd::{Gid, Group, Uid, User, getegid, geteuid, setgid, setgroups, setuid};

/// What happened to the process's identity.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Identity {
    /// Not started as root: nothing to drop.
    Unchanged {
        /// The uid we run as.
        uid: u32,
    },
    /// Root was asked to stay root (`user = "root"`).
    StayedRoot,
    /// Dropped to this user and group.
    Dropped {
        /// The user's name.
        user: String,
        /// Its uid.
        uid: u32,
        /// The gid.
        gid: u32,
    },
}

/// Why the drop failed. Every variant names the user or group.
#[derive(Debug, thiserror::Error)]
pub enum PrivError {
    /// The user does not exist.
    #[error("user {0:?} does not exist")]
    NoSuchUser(String),
    /// The group does not exist.
    #[error("group {0:?} does not exist")]
    NoSuchGroup(String),
    /// Looking up the user or group failed.
    #[error("looking up {what} {name:?}")]
    Lookup {
        /// "user" or "group".
        what: &'static str,
        /// The name.
        name: String,
        /// The cause.
        #[source]
        source: nix::Error,
    },
    /// A set*id call failed.
    #[error("{call} for user {user:?} failed")]
    Set {
        /// Which call.
        call: &'static str,
        /// The user.
        user: String,
        /// The cause.
        #[source]
        source: nix::Error,
    },
    /// After the drop the process could still regain root.
    #[error("still privileged after dropping to {0:?}")]
    StillRoot(String),
}

/// The uid and gid `drop_privileges` would switch to, when running as root and not staying
/// root; `None` otherwise. Lets resources made as root be handed over first.
pub fn target_ids(user: &str, group: Option<&str>) -> Result<Option<(u32, u32)>, PrivError> {
    if !geteuid().is_root() || user == "root" {
        return Ok(None);
    }
    let (uid, gid) = lookup(user, group)?;
    Ok(Some((uid.as_raw(), gid.as_raw())))
}

fn lookup(user: &str, group: Option<&str>) -> Result<(Uid, Gid), PrivError> {
    let u = User::from_name(user)
        .map_err(|source| PrivError::Lookup {
            what: "user",
            name: user.to_string(),
            source,
        })?
        .ok_or_else(|| PrivError::NoSuchUser(user.to_string()))?;
    let gid = match group {
        None => u.gid,
        Some(g) => {
            Group::from_name(g)
                .map_err(|source| PrivError::Lookup {
                    what: "group",
                    name: g.to_string(),
                    source,
                })?
                .ok_or_else(|| PrivError::NoSuchGroup(g.to_string()))?
                .gid
        }
    };
    Ok((u.uid, gid))
}

/// Drops to `user` (and `group`, else the user's primary group) when running as root.
pub fn drop_privileges(user: &str, group: Option<&str>) -> Result<Identity, PrivError> {
    if !geteuid().is_root() {
        return Ok(Identity::Unchanged {
            uid: geteuid().as_raw(),
        });
    }
    if user == "root" {
        return Ok(Identity::StayedRoot);
    }
    let (uid, gid) = lookup(user, group)?;
    let set = |call: &'static str, r: nix::Result<()>| {
        r.map_err(|source| PrivError::Set {
            call,
            user: user.to_string(),
            source,
        })
    };
    set("setgroups", setgroups(&[gid]))?;
    set("setgid", setgid(gid))?;
    set("setuid", setuid(uid))?;
    // Paranoia, as OpenSSH does: if regaining root works, the drop did not happen.
    if uid != Uid::from_raw(0) && (setuid(Uid::from_raw(0)).is_ok() || geteuid().is_root()) {
        return Err(PrivError::StillRoot(user.to_string()));
    }
    if gid != Gid::from_raw(0) && getegid() != gid {
        return Err(PrivError::StillRoot(user.to_string()));
    }
    Ok(Identity::Dropped {
        user: user.to_string(),
        uid: uid.as_raw(),
        gid: gid.as_raw(),
    })
}
