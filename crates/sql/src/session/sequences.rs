//! CREATE SEQUENCE and DROP SEQUENCE.
//!
//! A sequence made by CREATE SEQUENCE has a definition in the catalog
//! (`catalog::Sequence`: type, increment, bounds, start, cycle) and, like a SERIAL column's
//! sequence, its next value under `Q<name>`, which nextval takes in blocks (see
//! `Session::next_value`). The options are checked as PostgreSQL checks them, with its
//! messages (22023).
//!
//! Left out: ALTER SEQUENCE, OWNED BY, temporary sequences, and a CACHE per session
//! (values are taken in the node's own blocks; PostgreSQL also leaves gaps after a crash).

use super::{forget_sequence, sequence_key, QueryResult, Session};
use crate::ast::SequenceOptions;
use crate::catalog::{self, keys, Sequence};
use crate::error::{codes, Error, Result};
use crate::types::DataType;
use txn::Txn;

fn invalid(message: String) -> Error {
    Error::new(codes::INVALID_PARAMETER_VALUE, message)
}

/// The definition CREATE SEQUENCE's `options` give, with PostgreSQL's defaults.
fn define(id: u32, name: &str, o: &SequenceOptions) -> Result<Sequence> {
    let data_type = o.data_type.clone().unwrap_or(DataType::Int8);
    let (type_min, type_max) = match data_type {
        DataType::Int2 => (i64::from(i16::MIN), i64::from(i16::MAX)),
        DataType::Int4 => (i64::from(i32::MIN), i64::from(i32::MAX)),
        DataType::Int8 => (i64::MIN, i64::MAX),
        _ => return Err(invalid("sequence type must be smallint, integer, or bigint".into())),
    };
    let increment = o.increment.unwrap_or(1);
    if increment == 0 {
        return Err(invalid("INCREMENT must not be zero".into()));
    }
    let max = o.max.flatten().unwrap_or(if increment > 0 { type_max } else { -1 });
    let min = o.min.flatten().unwrap_or(if increment > 0 { 1 } else { type_min });
    let type_name = data_type.pg_name();
    if max > type_max || max < type_min {
        return Err(invalid(format!("MAXVALUE ({max}) is out of range for sequence data type {type_name}")));
    }
    if min < type_min || min > type_max {
        return Err(invalid(format!("MINVALUE ({min}) is out of range for sequence data type {type_name}")));
    }
    if min >= max {
        return Err(invalid(format!("MINVALUE ({min}) must be less than MAXVALUE ({max})")));
    }
    let start = o.start.unwrap_or(if increment > 0 { min } else { max });
    if start < min {
        return Err(invalid(format!("START value ({start}) cannot be less than MINVALUE ({min})")));
    }
    if start > max {
        return Err(invalid(format!("START value ({start}) cannot be greater than MAXVALUE ({max})")));
    }
    let cache = o.cache.unwrap_or(1);
    if cache < 1 {
        return Err(invalid(format!("CACHE ({cache}) must be greater than zero")));
    }
    Ok(Sequence {
        id,
        name: name.to_string(),
        data_type,
        increment,
        min,
        max,
        start,
        cache,
        cycle: o.cycle.unwrap_or(false),
    })
}

impl Session {
    pub(super) fn create_sequence(
        &self,
        txn: &mut Txn,
        name: &str,
        if_not_exists: bool,
        options: &SequenceOptions,
    ) -> Result<QueryResult> {
        let taken = catalog::get_table(txn, name)?.is_some()
            || catalog::get_view(txn, name)?.is_some()
            || txn.get(&keys::index(name))?.is_some()
            || txn.get(&sequence_key(name))?.is_some();
        if taken {
            if if_not_exists {
                let mut r = QueryResult::command("CREATE SEQUENCE");
                r.notices.push(format!("relation \"{name}\" already exists, skipping"));
                return Ok(r);
            }
            return Err(Error::new(codes::DUPLICATE_TABLE, format!("relation \"{name}\" already exists")));
        }
        // Checked before an id is taken, so a bad statement leaves the counter alone.
        define(0, name, options)?;
        let seq = define(catalog::next_id(txn)?, name, options)?;
        catalog::put_sequence(txn, &seq)?;
        txn.put(&sequence_key(name), &seq.start.to_le_bytes())?;
        forget_sequence(self, name);
        Ok(QueryResult::command("CREATE SEQUENCE"))
    }

    pub(super) fn drop_sequences(&self, txn: &mut Txn, names: &[String], if_exists: bool) -> Result<QueryResult> {
        let mut notices = Vec::new();
        for name in names {
            if catalog::get_sequence(txn, name)?.is_none() {
                if txn.get(&sequence_key(name))?.is_some() {
                    // A SERIAL column's: it goes with its table.
                    return Err(Error::new(
                        codes::DEPENDENT_OBJECTS_STILL_EXIST,
                        format!("cannot drop sequence {name} because other objects depend on it"),
                    )
                    .with_detail(format!("a column's default value uses sequence {name}"))
                    .with_hint("Drop the table or the column that owns it."));
                }
                if if_exists {
                    notices.push(format!("sequence \"{name}\" does not exist, skipping"));
                    continue;
                }
                return Err(Error::new(codes::UNDEFINED_TABLE, format!("sequence \"{name}\" does not exist")));
            }
            txn.delete(&keys::sequence_def(name))?;
            txn.delete(&sequence_key(name))?;
            catalog::drop_comments(txn, name)?;
            forget_sequence(self, name);
        }
        let mut r = QueryResult::command("DROP SEQUENCE");
        r.notices = notices;
        Ok(r)
    }
}
