//! What travels through Raft: the type config, the opaque command, and the outcome of
//! applying it.
//!
//! The log carries [`Command`]s as bytes. Raft never looks inside; only the state machine
//! decodes them. Later, the bytes are Bulwark's encoded `txn::Command` (snapshot_ts,
//! isolation level, write set, read set); in this brick they are [`RegisterCommand`]s, a
//! key-value register map that a linearizability checker can judge.
//!
//! # Encoding of a register command
//!
//! All integers little-endian.
//!
//! ```text
//!   Write: 0x01 | key u64 | value i64            (17 bytes)
//!   Cas:   0x02 | key u64 | expect i64 | new i64 (25 bytes)
//!   Read:  0x03 | key u64                        ( 9 bytes)
//! ```
//!
//! Anything else decodes to an error, and applying it gives [`Outcome::Rejected`] on every
//! replica alike: a bad command is rejected deterministically, never a reason to diverge.

use std::fmt;

/// A node's identity in the cluster.
pub type NodeId = u64;

openraft::declare_raft_types!(
    /// Bulwark's Raft type config: opaque commands in, apply outcomes out, tokio with seeded draws.
    pub TypeConfig:
        D = Command,
        R = Outcome,
        NodeId = NodeId,
        Node = openraft::BasicNode,
        Entry = openraft::Entry<TypeConfig>,
        SnapshotData = crate::snapshot::ImageData,
        AsyncRuntime = crate::runtime::BulwarkRuntime,
);

/// Bulwark's Raft handle.
pub type Raft = openraft::Raft<TypeConfig>;

/// An opaque command proposed to Raft: bytes only the state machine decodes.
#[derive(Clone, PartialEq, Eq)]
pub struct Command(pub Vec<u8>);

impl fmt::Debug for Command {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // Logged by openraft at debug level; a decoded view is more useful than raw bytes.
        match RegisterCommand::decode(&self.0) {
            Ok(c) => write!(f, "{c:?}"),
            Err(_) => write!(f, "Command({} bytes)", self.0.len()),
        }
    }
}

/// The outcome of applying one command, returned to the proposer by `client_write`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// A write was installed.
    Written,
    /// A compare-and-set ran: `ok` says whether it set the value; `current` is the value
    /// after it ran.
    Cas {
        /// Whether the register held the expected value (and now holds the new one).
        ok: bool,
        /// The register's value after the command.
        current: Option<i64>,
    },
    /// A read, at this command's place in the log.
    Read(Option<i64>),
    /// The command could not be decoded; every replica rejects it the same way.
    Rejected(String),
    /// A log entry that carries no command (a leader's blank entry or a membership change).
    None,
    /// The transaction commands of one entry applied to the MVCC store, one outcome each
    /// (see [`crate::node`]).
    Txns(Vec<txn::command::Outcome>),
}

/// The register map's commands, for the tests' linearizability workload.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RegisterCommand {
    /// Set `key` to `value`.
    Write {
        /// The register.
        key: u64,
        /// Its new value.
        value: i64,
    },
    /// Set `key` to `new` if it holds `expect`.
    Cas {
        /// The register.
        key: u64,
        /// The value it must hold.
        expect: i64,
        /// The value it gets.
        new: i64,
    },
    /// Read `key` at this command's place in the log.
    Read {
        /// The register.
        key: u64,
    },
}

const TAG_WRITE: u8 = 0x01;
const TAG_CAS: u8 = 0x02;
const TAG_READ: u8 = 0x03;

impl RegisterCommand {
    /// Encodes the command (format in the module docs).
    pub fn encode(&self) -> Command {
        let mut out = Vec::with_capacity(25);
        match *self {
            RegisterCommand::Write { key, value } => {
                out.push(TAG_WRITE);
                out.extend_from_slice(&key.to_le_bytes());
                out.extend_from_slice(&value.to_le_bytes());
            }
            RegisterCommand::Cas { key, expect, new } => {
                out.push(TAG_CAS);
                out.extend_from_slice(&key.to_le_bytes());
                out.extend_from_slice(&expect.to_le_bytes());
                out.extend_from_slice(&new.to_le_bytes());
            }
            RegisterCommand::Read { key } => {
                out.push(TAG_READ);
                out.extend_from_slice(&key.to_le_bytes());
            }
        }
        Command(out)
    }

    /// Decodes a command; an error names what was wrong.
    pub fn decode(bytes: &[u8]) -> Result<RegisterCommand, String> {
        let word = |at: usize| -> [u8; 8] {
            let mut w = [0u8; 8];
            w.copy_from_slice(&bytes[at..at + 8]);
            w
        };
        match (bytes.first(), bytes.len()) {
            (Some(&TAG_WRITE), 17) => {
                Ok(RegisterCommand::Write { key: u64::from_le_bytes(word(1)), value: i64::from_le_bytes(word(9)) })
            }
            (Some(&TAG_CAS), 25) => Ok(RegisterCommand::Cas {
                key: u64::from_le_bytes(word(1)),
                expect: i64::from_le_bytes(word(9)),
                new: i64::from_le_bytes(word(17)),
            }),
            (Some(&TAG_READ), 9) => Ok(RegisterCommand::Read { key: u64::from_le_bytes(word(1)) }),
            (Some(tag), len) => Err(format!("register command: tag {tag:#04x}, {len} bytes")),
            (None, _) => Err("register command: empty".to_string()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn register_commands_round_trip() {
        let commands = [
            RegisterCommand::Write { key: 7, value: -3 },
            RegisterCommand::Cas { key: u64::MAX, expect: i64::MIN, new: i64::MAX },
            RegisterCommand::Read { key: 0 },
        ];
        for c in commands {
            assert_eq!(RegisterCommand::decode(&c.encode().0), Ok(c));
        }
    }

    #[test]
    fn bad_bytes_are_rejected() {
        assert!(RegisterCommand::decode(&[]).is_err());
        assert!(RegisterCommand::decode(&[TAG_READ, 1, 2]).is_err());
        assert!(RegisterCommand::decode(&[0x09; 9]).is_err());
    }
}
