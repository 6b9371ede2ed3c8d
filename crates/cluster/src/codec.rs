//! A binary encoding of openraft's types: what Raft entries look like in the write-ahead
//! log, and the vocabulary the TCP transport ([`crate::tcp`]) builds its messages from.
//!
//! openraft 0.9 only offers serde derives (behind its `serde` feature) and leaves the wire
//! and disk formats to the application. Bulwark writes its own: a serde format would make
//! the bytes in the log depend on a library's choices (field order, enum tagging, varint
//! rules) that can change under us, while a hand-written one is a table in this file and in
//! `docs/format.md`, checked byte by byte, with a version byte in front.
//!
//! ```text
//!   Entry ──encode_entry──▶ version | log id | tag | payload ──▶ WAL record payload
//!                                                              (or one entry inside an
//!                                                               AppendEntries frame)
//!   WAL record payload ──decode_entry──▶ Entry, or CodecError { what, offset }
//! ```
//!
//! # Format
//!
//! All integers are little-endian, fixed width. A *top-level* value (what an `encode_*`
//! function writes and the matching `decode_*` reads) is one format-version byte followed
//! by the value, with nothing after it:
//!
//! ```text
//!   top-level value
//!   offset  size  field
//!        0     1  version   u8 = FORMAT_VERSION (1)
//!        1     …  the value, as below
//! ```
//!
//! Values nest without their own version byte (an AppendEntries frame has one version for
//! the whole message; see [`crate::tcp`]):
//!
//! ```text
//!   LogId (24 bytes)
//!        0     8  term        u64, the term of the leader that proposed the entry
//!        8     8  node_id     u64, that leader's node id
//!       16     8  index       u64
//!
//!   Option<LogId> (1 or 25 bytes)
//!        0     1  present     u8: 0 none (nothing follows), 1 some
//!        1    24  LogId       only if present = 1
//!
//!   Vote (17 bytes)
//!        0     8  term        u64
//!        8     8  node_id     u64, the candidate or leader voted for
//!       16     1  committed   u8: 0 no, 1 yes (a quorum granted it)
//!
//!   bytes, string
//!        0     4  len         u32, at most the field's named bound
//!        4   len  content     a string's content is UTF-8
//!
//!   Membership
//!        0     4  configs     u32, at most MEMBERSHIP_CONFIGS_MAX (8); 2 while joint
//!        4     …  configs × { count u32 (at most MEMBERSHIP_NODES_MAX),
//!                             count × node_id u64, strictly ascending }
//!        …     4  nodes       u32, at most MEMBERSHIP_NODES_MAX (1024)
//!        …     …  nodes × { node_id u64, strictly ascending,
//!                           addr string (at most NODE_ADDR_BYTES_MAX, 1024) }
//!
//!   StoredMembership
//!        0     …  log_id      Option<LogId>, the entry that carried the membership
//!        …     …  membership  Membership
//!
//!   SnapshotMeta
//!        0     …  last_log_id      Option<LogId>
//!        …     …  last_membership  StoredMembership
//!        …     …  snapshot_id      string, at most SNAPSHOT_ID_BYTES_MAX (1024)
//!
//!   Entry
//!        0    24  log_id      LogId
//!       24     1  tag         u8: 0 blank, 1 normal, 2 membership
//!       25     …  payload     blank: nothing
//!                             normal: the command, bytes (at most COMMAND_BYTES_MAX, 640 MiB)
//!                             membership: Membership
//! ```
//!
//! Every node, voter or learner, has one entry in a membership's node list; a voter is a
//! node id that also appears in a config. A learner is in the node list only.
//!
//! # Strictness
//!
//! There is exactly one encoding of each value, and the decoder accepts only that one:
//! a version other than [`FORMAT_VERSION`], a tag or boolean out of range, a length or
//! count over its bound, node ids out of order or repeated, a voter without a node entry,
//! invalid UTF-8, a value cut short, or bytes left over after a top-level value are all a
//! [`CodecError`] naming the field and its byte offset. Nothing on the decode path panics
//! or allocates more than the input can back: a count is checked against the bytes left
//! before anything is reserved.
//!
//! The encoder asserts the same bounds: a value over a bound is a caller's bug (the
//! proposer must refuse a command over [`COMMAND_BYTES_MAX`] before it reaches Raft), and
//! writing a value the decoder would reject would make the log unreadable.
//!
//! # What it leaves out
//!
//! - No checksum: the WAL frame and the transport frame each carry a CRC32C over these
//!   bytes; the codec does not repeat it.
//! - No compression and no varints: fixed-width integers keep the format a table.
//! - Only [`BasicNode`] as the node type and `u64` node ids (the [`TypeConfig`] in
//!   [`crate::types`]); a richer node record needs a new format version.
//! - No migration: a later version must keep decoding version 1.

use std::collections::{BTreeMap, BTreeSet};

use openraft::{BasicNode, Entry, EntryPayload, LeaderId, LogId, Membership, SnapshotMeta, StoredMembership, Vote};

use crate::types::{Command, NodeId, TypeConfig};

/// The format version every top-level value starts with.
pub const FORMAT_VERSION: u8 = 1;
/// The longest command a normal entry may carry, in bytes: the write-ahead log's record
/// bound (`storage::wal::WAL_RECORD_BYTES_MAX`), since a command is stored as one record.
pub const COMMAND_BYTES_MAX: usize = 640 << 20;
/// The longest node address, in bytes.
pub const NODE_ADDR_BYTES_MAX: usize = 1024;
/// The longest snapshot id, in bytes.
pub const SNAPSHOT_ID_BYTES_MAX: usize = 1024;
/// The most configs in one membership (openraft uses one, or two while joint).
pub const MEMBERSHIP_CONFIGS_MAX: usize = 8;
/// The most nodes (voters and learners) in one membership, and in one config.
pub const MEMBERSHIP_NODES_MAX: usize = 1024;
/// The size of an encoded [`LogId`], in bytes.
pub const LOG_ID_BYTES: usize = 24;
/// The size of an encoded [`Vote`], in bytes.
pub const VOTE_BYTES: usize = 17;
/// The smallest encoded entry (a blank one), in bytes, without a version byte.
pub const ENTRY_BYTES_MIN: usize = LOG_ID_BYTES + 1;

const TAG_BLANK: u8 = 0;
const TAG_NORMAL: u8 = 1;
const TAG_MEMBERSHIP: u8 = 2;

/// Why bytes did not decode: what was being read, and the byte offset where it starts.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CodecError {
    /// The input ended inside a field.
    #[error("{what} at byte {offset}: truncated, needs {needed} bytes, {left} left")]
    Truncated {
        /// The field.
        what: &'static str,
        /// Where it starts.
        offset: usize,
        /// Bytes it needs.
        needed: usize,
        /// Bytes the input had left.
        left: usize,
    },
    /// A length or count over its bound.
    #[error("{what} at byte {offset}: {len} is over the limit of {max}")]
    TooLong {
        /// The field.
        what: &'static str,
        /// Where its length starts.
        offset: usize,
        /// The length or count found.
        len: u64,
        /// Its bound.
        max: usize,
    },
    /// A tag or boolean byte out of range.
    #[error("{what} at byte {offset}: unknown value {value:#04x}")]
    BadTag {
        /// The field.
        what: &'static str,
        /// Where it is.
        offset: usize,
        /// The byte found.
        value: u8,
    },
    /// A format version this build does not read.
    #[error("format version {version} at byte {offset}: this build reads version {FORMAT_VERSION}")]
    BadVersion {
        /// Where it is.
        offset: usize,
        /// The version found.
        version: u8,
    },
    /// Well-formed fields that break a rule of the format.
    #[error("{what} at byte {offset}: {why}")]
    Malformed {
        /// The field.
        what: &'static str,
        /// Where it starts.
        offset: usize,
        /// The rule it breaks.
        why: String,
    },
    /// Bytes after a complete top-level value.
    #[error("{what}: {left} trailing bytes at byte {offset}")]
    Trailing {
        /// The value.
        what: &'static str,
        /// Where its encoding ended.
        offset: usize,
        /// How many bytes follow.
        left: usize,
    },
}

/// A cursor over encoded bytes. Every read checks that the bytes are there and returns a
/// [`CodecError`] naming the field and offset if not; lengths and counts are checked
/// against the bound the caller names before anything is read or reserved.
#[derive(Debug, Clone)]
pub struct Reader<'a> {
    bytes: &'a [u8],
    at: usize,
}

impl<'a> Reader<'a> {
    /// A reader at the start of `bytes`.
    pub fn new(bytes: &'a [u8]) -> Reader<'a> {
        Reader { bytes, at: 0 }
    }

    /// The offset of the next byte to read.
    pub fn offset(&self) -> usize {
        self.at
    }

    /// How many bytes are left.
    pub fn left(&self) -> usize {
        self.bytes.len() - self.at
    }

    /// The next `n` bytes.
    pub fn take(&mut self, what: &'static str, n: usize) -> Result<&'a [u8], CodecError> {
        if n > self.left() {
            return Err(CodecError::Truncated { what, offset: self.at, needed: n, left: self.left() });
        }
        let slice = &self.bytes[self.at..self.at + n];
        self.at += n;
        Ok(slice)
    }

    fn array<const N: usize>(&mut self, what: &'static str) -> Result<[u8; N], CodecError> {
        let mut a = [0u8; N];
        a.copy_from_slice(self.take(what, N)?);
        Ok(a)
    }

    /// One byte.
    pub fn u8(&mut self, what: &'static str) -> Result<u8, CodecError> {
        Ok(self.array::<1>(what)?[0])
    }

    /// A boolean byte: 0 or 1, anything else is an error.
    pub fn bool(&mut self, what: &'static str) -> Result<bool, CodecError> {
        let offset = self.at;
        match self.u8(what)? {
            0 => Ok(false),
            1 => Ok(true),
            value => Err(CodecError::BadTag { what, offset, value }),
        }
    }

    /// A little-endian `u32`.
    pub fn u32(&mut self, what: &'static str) -> Result<u32, CodecError> {
        Ok(u32::from_le_bytes(self.array(what)?))
    }

    /// A little-endian `u64`.
    pub fn u64(&mut self, what: &'static str) -> Result<u64, CodecError> {
        Ok(u64::from_le_bytes(self.array(what)?))
    }

    /// A `u32` count of items, at most `max`, each at least `item_bytes_min` bytes long
    /// (checked against the bytes left, so a lying count fails before anything is
    /// reserved for it).
    pub fn count(&mut self, what: &'static str, max: usize, item_bytes_min: usize) -> Result<usize, CodecError> {
        let offset = self.at;
        let count = self.u32(what)? as usize;
        if count > max {
            return Err(CodecError::TooLong { what, offset, len: count as u64, max });
        }
        let needed = count.saturating_mul(item_bytes_min);
        if needed > self.left() {
            return Err(CodecError::Truncated { what, offset: self.at, needed, left: self.left() });
        }
        Ok(count)
    }

    /// A `u32` length, then that many bytes; the length is at most `max`.
    pub fn bytes(&mut self, what: &'static str, max: usize) -> Result<&'a [u8], CodecError> {
        let offset = self.at;
        let len = self.u32(what)? as usize;
        if len > max {
            return Err(CodecError::TooLong { what, offset, len: len as u64, max });
        }
        self.take(what, len)
    }

    /// Like [`Reader::bytes`], and the bytes must be UTF-8.
    pub fn string(&mut self, what: &'static str, max: usize) -> Result<String, CodecError> {
        let offset = self.at;
        let bytes = self.bytes(what, max)?;
        match std::str::from_utf8(bytes) {
            Ok(s) => Ok(s.to_string()),
            Err(e) => Err(CodecError::Malformed { what, offset, why: format!("not UTF-8: {e}") }),
        }
    }

    /// The format-version byte; anything but [`FORMAT_VERSION`] is an error.
    pub fn version(&mut self) -> Result<(), CodecError> {
        let offset = self.at;
        match self.u8("format version")? {
            FORMAT_VERSION => Ok(()),
            version => Err(CodecError::BadVersion { offset, version }),
        }
    }

    /// Checks that every byte was read: trailing bytes after `what` are an error.
    pub fn finish(&self, what: &'static str) -> Result<(), CodecError> {
        match self.left() {
            0 => Ok(()),
            left => Err(CodecError::Trailing { what, offset: self.at, left }),
        }
    }
}

/// Appends one byte.
pub fn put_u8(out: &mut Vec<u8>, v: u8) {
    out.push(v);
}

/// Appends a boolean byte (0 or 1).
pub fn put_bool(out: &mut Vec<u8>, v: bool) {
    out.push(u8::from(v));
}

/// Appends a little-endian `u32`.
pub fn put_u32(out: &mut Vec<u8>, v: u32) {
    out.extend_from_slice(&v.to_le_bytes());
}

/// Appends a little-endian `u64`.
pub fn put_u64(out: &mut Vec<u8>, v: u64) {
    out.extend_from_slice(&v.to_le_bytes());
}

/// Appends a `u32` count; a count over `max` is the caller's bug.
pub fn put_count(out: &mut Vec<u8>, what: &str, count: usize, max: usize) {
    assert!(count <= max, "{what}: count {count} over the limit of {max}");
    put_u32(out, count as u32);
}

/// Appends a `u32` length and the bytes; a length over `max` is the caller's bug.
pub fn put_bytes(out: &mut Vec<u8>, what: &str, bytes: &[u8], max: usize) {
    assert!(max <= u32::MAX as usize, "{what}: bound {max} does not fit a u32 length");
    assert!(bytes.len() <= max, "{what}: {} bytes over the limit of {max}", bytes.len());
    put_u32(out, bytes.len() as u32);
    out.extend_from_slice(bytes);
}

/// Appends a string as [`put_bytes`] does.
pub fn put_str(out: &mut Vec<u8>, what: &str, s: &str, max: usize) {
    put_bytes(out, what, s.as_bytes(), max);
}

/// Appends a log id (no version byte).
pub fn put_log_id(out: &mut Vec<u8>, id: &LogId<NodeId>) {
    put_u64(out, id.leader_id.term);
    put_u64(out, id.leader_id.node_id);
    put_u64(out, id.index);
}

/// Reads a log id (no version byte).
pub fn read_log_id(r: &mut Reader<'_>) -> Result<LogId<NodeId>, CodecError> {
    let term = r.u64("log id term")?;
    let node_id = r.u64("log id node")?;
    let index = r.u64("log id index")?;
    Ok(LogId::new(LeaderId::new(term, node_id), index))
}

/// Appends an optional log id: a presence byte, then the log id if present.
pub fn put_option_log_id(out: &mut Vec<u8>, id: &Option<LogId<NodeId>>) {
    match id {
        None => put_bool(out, false),
        Some(id) => {
            put_bool(out, true);
            put_log_id(out, id);
        }
    }
}

/// Reads an optional log id.
pub fn read_option_log_id(r: &mut Reader<'_>) -> Result<Option<LogId<NodeId>>, CodecError> {
    match r.bool("log id presence")? {
        false => Ok(None),
        true => read_log_id(r).map(Some),
    }
}

/// Appends a vote (no version byte).
pub fn put_vote(out: &mut Vec<u8>, vote: &Vote<NodeId>) {
    put_u64(out, vote.leader_id.term);
    put_u64(out, vote.leader_id.node_id);
    put_bool(out, vote.committed);
}

/// Reads a vote (no version byte).
pub fn read_vote(r: &mut Reader<'_>) -> Result<Vote<NodeId>, CodecError> {
    let term = r.u64("vote term")?;
    let node_id = r.u64("vote node")?;
    let committed = r.bool("vote committed")?;
    Ok(Vote { leader_id: LeaderId::new(term, node_id), committed })
}

fn put_id_set(out: &mut Vec<u8>, ids: &BTreeSet<NodeId>) {
    put_count(out, "membership config", ids.len(), MEMBERSHIP_NODES_MAX);
    for id in ids {
        put_u64(out, *id);
    }
}

fn read_id_set(r: &mut Reader<'_>) -> Result<BTreeSet<NodeId>, CodecError> {
    let count = r.count("membership config", MEMBERSHIP_NODES_MAX, 8)?;
    let mut ids = BTreeSet::new();
    for _ in 0..count {
        let offset = r.offset();
        let id = r.u64("membership voter")?;
        if ids.last().is_some_and(|&last| last >= id) {
            let why = format!("node {id} is not above the one before it");
            return Err(CodecError::Malformed { what: "membership voter", offset, why });
        }
        ids.insert(id);
    }
    Ok(ids)
}

/// Appends a membership (no version byte).
pub fn put_membership(out: &mut Vec<u8>, m: &Membership<NodeId, BasicNode>) {
    let configs = m.get_joint_config();
    put_count(out, "membership configs", configs.len(), MEMBERSHIP_CONFIGS_MAX);
    for config in configs {
        put_id_set(out, config);
    }
    let nodes: Vec<(&NodeId, &BasicNode)> = m.nodes().collect();
    put_count(out, "membership nodes", nodes.len(), MEMBERSHIP_NODES_MAX);
    for (id, node) in nodes {
        put_u64(out, *id);
        put_str(out, "node address", &node.addr, NODE_ADDR_BYTES_MAX);
    }
    // openraft gives every voter a node entry; the decoder relies on it (see read_membership).
    for voter in m.voter_ids() {
        assert!(m.get_node(&voter).is_some(), "membership voter {voter} has no node entry: {m}");
    }
}

/// Reads a membership (no version byte).
pub fn read_membership(r: &mut Reader<'_>) -> Result<Membership<NodeId, BasicNode>, CodecError> {
    let start = r.offset();
    let config_count = r.count("membership configs", MEMBERSHIP_CONFIGS_MAX, 4)?;
    let mut configs = Vec::with_capacity(config_count);
    for _ in 0..config_count {
        configs.push(read_id_set(r)?);
    }
    let node_count = r.count("membership nodes", MEMBERSHIP_NODES_MAX, 12)?;
    let mut nodes = BTreeMap::new();
    let mut last = None;
    for _ in 0..node_count {
        let offset = r.offset();
        let id = r.u64("membership node")?;
        if last.is_some_and(|last| last >= id) {
            let why = format!("node {id} is not above the one before it");
            return Err(CodecError::Malformed { what: "membership node", offset, why });
        }
        last = Some(id);
        let addr = r.string("node address", NODE_ADDR_BYTES_MAX)?;
        nodes.insert(id, BasicNode { addr });
    }
    // Membership::new would invent an empty node for a voter without one; refuse instead, so
    // that what decodes is exactly what was encoded.
    if let Some(voter) = configs.iter().flatten().find(|id| !nodes.contains_key(id)) {
        let why = format!("voter {voter} has no node entry");
        return Err(CodecError::Malformed { what: "membership", offset: start, why });
    }
    Ok(Membership::new(configs, nodes))
}

/// Appends a stored membership (no version byte).
pub fn put_stored_membership(out: &mut Vec<u8>, m: &StoredMembership<NodeId, BasicNode>) {
    put_option_log_id(out, m.log_id());
    put_membership(out, m.membership());
}

/// Reads a stored membership (no version byte).
pub fn read_stored_membership(r: &mut Reader<'_>) -> Result<StoredMembership<NodeId, BasicNode>, CodecError> {
    let log_id = read_option_log_id(r)?;
    let membership = read_membership(r)?;
    Ok(StoredMembership::new(log_id, membership))
}

/// Appends snapshot metadata (no version byte).
pub fn put_snapshot_meta(out: &mut Vec<u8>, meta: &SnapshotMeta<NodeId, BasicNode>) {
    put_option_log_id(out, &meta.last_log_id);
    put_stored_membership(out, &meta.last_membership);
    put_str(out, "snapshot id", &meta.snapshot_id, SNAPSHOT_ID_BYTES_MAX);
}

/// Reads snapshot metadata (no version byte).
pub fn read_snapshot_meta(r: &mut Reader<'_>) -> Result<SnapshotMeta<NodeId, BasicNode>, CodecError> {
    let last_log_id = read_option_log_id(r)?;
    let last_membership = read_stored_membership(r)?;
    let snapshot_id = r.string("snapshot id", SNAPSHOT_ID_BYTES_MAX)?;
    Ok(SnapshotMeta { last_log_id, last_membership, snapshot_id })
}

/// Appends an entry (no version byte).
pub fn put_entry(out: &mut Vec<u8>, e: &Entry<TypeConfig>) {
    put_log_id(out, &e.log_id);
    match &e.payload {
        EntryPayload::Blank => put_u8(out, TAG_BLANK),
        EntryPayload::Normal(Command(bytes)) => {
            put_u8(out, TAG_NORMAL);
            put_bytes(out, "command", bytes, COMMAND_BYTES_MAX);
        }
        EntryPayload::Membership(m) => {
            put_u8(out, TAG_MEMBERSHIP);
            put_membership(out, m);
        }
    }
}

/// Reads an entry (no version byte).
pub fn read_entry(r: &mut Reader<'_>) -> Result<Entry<TypeConfig>, CodecError> {
    let log_id = read_log_id(r)?;
    let offset = r.offset();
    let payload = match r.u8("entry payload tag")? {
        TAG_BLANK => EntryPayload::Blank,
        TAG_NORMAL => EntryPayload::Normal(Command(r.bytes("command", COMMAND_BYTES_MAX)?.to_vec())),
        TAG_MEMBERSHIP => EntryPayload::Membership(read_membership(r)?),
        value => return Err(CodecError::BadTag { what: "entry payload tag", offset, value }),
    };
    Ok(Entry { log_id, payload })
}

/// Decodes a whole top-level value: version byte, the value, nothing after it.
fn decode_whole<T>(
    bytes: &[u8],
    what: &'static str,
    read: impl FnOnce(&mut Reader<'_>) -> Result<T, CodecError>,
) -> Result<T, CodecError> {
    let mut r = Reader::new(bytes);
    r.version()?;
    let value = read(&mut r)?;
    r.finish(what)?;
    Ok(value)
}

/// Appends a top-level entry: the payload of a Raft entry's WAL record.
pub fn encode_entry(e: &Entry<TypeConfig>, out: &mut Vec<u8>) {
    put_u8(out, FORMAT_VERSION);
    put_entry(out, e);
}

/// Decodes a top-level entry; all of `bytes` must be the one entry.
pub fn decode_entry(bytes: &[u8]) -> Result<Entry<TypeConfig>, CodecError> {
    decode_whole(bytes, "entry", read_entry)
}

/// Appends a top-level log id.
pub fn encode_log_id(id: &LogId<NodeId>, out: &mut Vec<u8>) {
    put_u8(out, FORMAT_VERSION);
    put_log_id(out, id);
}

/// Decodes a top-level log id.
pub fn decode_log_id(bytes: &[u8]) -> Result<LogId<NodeId>, CodecError> {
    decode_whole(bytes, "log id", read_log_id)
}

/// Appends a top-level vote.
pub fn encode_vote(vote: &Vote<NodeId>, out: &mut Vec<u8>) {
    put_u8(out, FORMAT_VERSION);
    put_vote(out, vote);
}

/// Decodes a top-level vote.
pub fn decode_vote(bytes: &[u8]) -> Result<Vote<NodeId>, CodecError> {
    decode_whole(bytes, "vote", read_vote)
}

/// Appends a top-level membership.
pub fn encode_membership(m: &Membership<NodeId, BasicNode>, out: &mut Vec<u8>) {
    put_u8(out, FORMAT_VERSION);
    put_membership(out, m);
}

/// Decodes a top-level membership.
pub fn decode_membership(bytes: &[u8]) -> Result<Membership<NodeId, BasicNode>, CodecError> {
    decode_whole(bytes, "membership", read_membership)
}

/// Appends a top-level stored membership.
pub fn encode_stored_membership(m: &StoredMembership<NodeId, BasicNode>, out: &mut Vec<u8>) {
    put_u8(out, FORMAT_VERSION);
    put_stored_membership(out, m);
}

/// Decodes a top-level stored membership.
pub fn decode_stored_membership(bytes: &[u8]) -> Result<StoredMembership<NodeId, BasicNode>, CodecError> {
    decode_whole(bytes, "stored membership", read_stored_membership)
}

/// Appends top-level snapshot metadata.
pub fn encode_snapshot_meta(meta: &SnapshotMeta<NodeId, BasicNode>, out: &mut Vec<u8>) {
    put_u8(out, FORMAT_VERSION);
    put_snapshot_meta(out, meta);
}

/// Decodes top-level snapshot metadata.
pub fn decode_snapshot_meta(bytes: &[u8]) -> Result<SnapshotMeta<NodeId, BasicNode>, CodecError> {
    decode_whole(bytes, "snapshot meta", read_snapshot_meta)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn log_id(term: u64, node: u64, index: u64) -> LogId<NodeId> {
        LogId::new(LeaderId::new(term, node), index)
    }

    fn node(addr: &str) -> BasicNode {
        BasicNode::new(addr)
    }

    /// A joint config ({1,2,3} and {3,4,5}) with two learners (8 and 9) in no config.
    fn joint_with_learners() -> Membership<NodeId, BasicNode> {
        let configs = vec![BTreeSet::from([1, 2, 3]), BTreeSet::from([3, 4, 5])];
        let nodes: BTreeMap<NodeId, BasicNode> =
            [1, 2, 3, 4, 5, 8, 9].into_iter().map(|id| (id, node(&format!("10.0.0.{id}:7000")))).collect();
        Membership::new(configs, nodes)
    }

    fn memberships() -> Vec<Membership<NodeId, BasicNode>> {
        let single: BTreeMap<NodeId, BasicNode> = [(1, node("a:1"))].into_iter().collect();
        vec![
            Membership::default(),
            Membership::from(single),
            joint_with_learners(),
            // Empty addresses and a learner only.
            Membership::new(vec![BTreeSet::from([7])], BTreeMap::from([(7, node("")), (u64::MAX, node("ü:0"))])),
        ]
    }

    fn entries() -> Vec<Entry<TypeConfig>> {
        let mut entries = vec![
            Entry { log_id: log_id(0, 0, 0), payload: EntryPayload::Blank },
            Entry { log_id: log_id(u64::MAX, u64::MAX, u64::MAX), payload: EntryPayload::Normal(Command(vec![])) },
            Entry { log_id: log_id(3, 2, 17), payload: EntryPayload::Normal(Command(vec![1, 2, 3, 0xff])) },
        ];
        for m in memberships() {
            entries.push(Entry { log_id: log_id(5, 1, 40), payload: EntryPayload::Membership(m) });
        }
        entries
    }

    fn snapshot_metas() -> Vec<SnapshotMeta<NodeId, BasicNode>> {
        vec![
            SnapshotMeta::default(),
            SnapshotMeta {
                last_log_id: Some(log_id(4, 3, 1000)),
                last_membership: StoredMembership::new(Some(log_id(2, 1, 9)), joint_with_learners()),
                snapshot_id: "T4-N3-1000-7".to_string(),
            },
        ]
    }

    /// Checks that `bytes` decode to `value`, and that every cut of them and every
    /// extension by one byte fails.
    fn check_strict<T: PartialEq + std::fmt::Debug>(
        bytes: &[u8],
        value: &T,
        decode: fn(&[u8]) -> Result<T, CodecError>,
    ) {
        assert_eq!(decode(bytes).as_ref(), Ok(value));
        for cut in 0..bytes.len() {
            assert!(decode(&bytes[..cut]).is_err(), "a cut at {cut} of {} decoded", bytes.len());
        }
        let mut longer = bytes.to_vec();
        longer.push(0);
        assert!(
            matches!(decode(&longer), Err(CodecError::Trailing { left: 1, offset, .. }) if offset == bytes.len()),
            "trailing byte: {:?}",
            decode(&longer)
        );
    }

    #[test]
    fn entries_round_trip_strictly() {
        for e in entries() {
            let mut bytes = Vec::new();
            encode_entry(&e, &mut bytes);
            check_strict(&bytes, &e, decode_entry);
        }
    }

    #[test]
    fn log_ids_and_votes_round_trip_strictly() {
        for id in [log_id(0, 0, 0), log_id(1, 2, 3), log_id(u64::MAX, u64::MAX, u64::MAX)] {
            let mut bytes = Vec::new();
            encode_log_id(&id, &mut bytes);
            assert_eq!(bytes.len(), 1 + LOG_ID_BYTES);
            check_strict(&bytes, &id, decode_log_id);
        }
        for vote in [Vote::new(0, 0), Vote::new_committed(7, 3), Vote::new(u64::MAX, u64::MAX)] {
            let mut bytes = Vec::new();
            encode_vote(&vote, &mut bytes);
            assert_eq!(bytes.len(), 1 + VOTE_BYTES);
            check_strict(&bytes, &vote, decode_vote);
        }
    }

    #[test]
    fn memberships_round_trip_strictly() {
        for m in memberships() {
            let mut bytes = Vec::new();
            encode_membership(&m, &mut bytes);
            check_strict(&bytes, &m, decode_membership);
            for log_id in [None, Some(log_id(1, 1, 1))] {
                let stored = StoredMembership::new(log_id, m.clone());
                let mut bytes = Vec::new();
                encode_stored_membership(&stored, &mut bytes);
                check_strict(&bytes, &stored, decode_stored_membership);
            }
        }
        let m = decode_membership(&{
            let mut b = Vec::new();
            encode_membership(&joint_with_learners(), &mut b);
            b
        })
        .expect("decodes");
        assert_eq!(m.learner_ids().collect::<Vec<_>>(), vec![8, 9]);
        assert_eq!(m.get_joint_config().len(), 2);
    }

    #[test]
    fn snapshot_metas_round_trip_strictly() {
        for meta in snapshot_metas() {
            let mut bytes = Vec::new();
            encode_snapshot_meta(&meta, &mut bytes);
            check_strict(&bytes, &meta, decode_snapshot_meta);
        }
    }

    #[test]
    fn blank_entry_bytes_are_as_documented() {
        let e = Entry::<TypeConfig> { log_id: log_id(2, 3, 4), payload: EntryPayload::Blank };
        let mut bytes = Vec::new();
        encode_entry(&e, &mut bytes);
        let mut expected = vec![FORMAT_VERSION];
        expected.extend_from_slice(&2u64.to_le_bytes());
        expected.extend_from_slice(&3u64.to_le_bytes());
        expected.extend_from_slice(&4u64.to_le_bytes());
        expected.push(TAG_BLANK);
        assert_eq!(bytes, expected);
        assert_eq!(bytes.len(), 1 + ENTRY_BYTES_MIN);
    }

    #[test]
    fn bad_bytes_are_named_with_their_offset() {
        let mut bytes = Vec::new();
        encode_entry(&Entry { log_id: log_id(1, 1, 1), payload: EntryPayload::Blank }, &mut bytes);

        let mut v = bytes.clone();
        v[0] = 2;
        assert_eq!(decode_entry(&v), Err(CodecError::BadVersion { offset: 0, version: 2 }));

        let mut v = bytes.clone();
        v[25] = 9;
        assert_eq!(decode_entry(&v), Err(CodecError::BadTag { what: "entry payload tag", offset: 25, value: 9 }));

        let mut vote = Vec::new();
        encode_vote(&Vote::new(1, 1), &mut vote);
        vote[17] = 2;
        assert_eq!(decode_vote(&vote), Err(CodecError::BadTag { what: "vote committed", offset: 17, value: 2 }));

        // A command longer than its bound.
        let mut v = bytes[..25].to_vec();
        v.push(TAG_NORMAL);
        v.extend_from_slice(&u32::MAX.to_le_bytes());
        assert!(matches!(decode_entry(&v), Err(CodecError::TooLong { what: "command", offset: 26, .. })));

        // A count that the bytes left cannot back fails before anything is reserved.
        let mut m = vec![FORMAT_VERSION];
        m.extend_from_slice(&1u32.to_le_bytes());
        m.extend_from_slice(&1000u32.to_le_bytes());
        assert!(matches!(decode_membership(&m), Err(CodecError::Truncated { what: "membership config", .. })));

        // Invalid UTF-8 in an address.
        let mut m = vec![FORMAT_VERSION];
        m.extend_from_slice(&0u32.to_le_bytes());
        m.extend_from_slice(&1u32.to_le_bytes());
        m.extend_from_slice(&5u64.to_le_bytes());
        m.extend_from_slice(&1u32.to_le_bytes());
        m.push(0xff);
        assert!(matches!(decode_membership(&m), Err(CodecError::Malformed { what: "node address", offset: 17, .. })));
    }

    #[test]
    fn non_canonical_memberships_are_rejected() {
        // Voters out of order: configs=1, {count 2: 5, 3}, nodes=0.
        let mut m = vec![FORMAT_VERSION];
        m.extend_from_slice(&1u32.to_le_bytes());
        m.extend_from_slice(&2u32.to_le_bytes());
        m.extend_from_slice(&5u64.to_le_bytes());
        m.extend_from_slice(&3u64.to_le_bytes());
        m.extend_from_slice(&0u32.to_le_bytes());
        assert!(matches!(
            decode_membership(&m),
            Err(CodecError::Malformed { what: "membership voter", offset: 17, .. })
        ));

        // A voter without a node entry: configs=1, {count 1: 5}, nodes=0.
        let mut m = vec![FORMAT_VERSION];
        m.extend_from_slice(&1u32.to_le_bytes());
        m.extend_from_slice(&1u32.to_le_bytes());
        m.extend_from_slice(&5u64.to_le_bytes());
        m.extend_from_slice(&0u32.to_le_bytes());
        assert!(matches!(decode_membership(&m), Err(CodecError::Malformed { what: "membership", offset: 1, .. })));

        // Repeated node ids: configs=0, nodes=2, (4, ""), (4, "").
        let mut m = vec![FORMAT_VERSION];
        m.extend_from_slice(&0u32.to_le_bytes());
        m.extend_from_slice(&2u32.to_le_bytes());
        for _ in 0..2 {
            m.extend_from_slice(&4u64.to_le_bytes());
            m.extend_from_slice(&0u32.to_le_bytes());
        }
        assert!(matches!(
            decode_membership(&m),
            Err(CodecError::Malformed { what: "membership node", offset: 21, .. })
        ));
    }

    fn arb_membership() -> impl Strategy<Value = Membership<NodeId, BasicNode>> {
        let ids = || proptest::collection::btree_set(0u64..12, 1..5);
        (proptest::collection::vec(ids(), 1..=2), proptest::collection::btree_map(0u64..20, "[a-z0-9.:]{0,12}", 0..6))
            .prop_map(|(configs, learners)| {
                let nodes: BTreeMap<NodeId, BasicNode> =
                    learners.into_iter().map(|(id, addr)| (id, BasicNode { addr })).collect();
                // Membership::new gives voters missing from `nodes` an empty address.
                Membership::new(configs, nodes)
            })
    }

    fn arb_entry() -> impl Strategy<Value = Entry<TypeConfig>> {
        let payload = prop_oneof![
            Just(EntryPayload::Blank),
            proptest::collection::vec(any::<u8>(), 0..64).prop_map(|b| EntryPayload::Normal(Command(b))),
            arb_membership().prop_map(EntryPayload::Membership),
        ];
        (any::<u64>(), any::<u64>(), any::<u64>(), payload)
            .prop_map(|(term, node, index, payload)| Entry { log_id: log_id(term, node, index), payload })
    }

    proptest! {
        #[test]
        fn random_entries_round_trip(e in arb_entry(), cut in any::<prop::sample::Index>()) {
            let mut bytes = Vec::new();
            encode_entry(&e, &mut bytes);
            prop_assert_eq!(decode_entry(&bytes), Ok(e));
            let cut = cut.index(bytes.len());
            prop_assert!(decode_entry(&bytes[..cut]).is_err());
        }

        #[test]
        fn random_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..200)) {
            let _ = decode_entry(&bytes);
            let _ = decode_snapshot_meta(&bytes);
        }
    }
}
