//! SET CONSTRAINTS: moving deferrable foreign key checks to the commit, or back.
//!
//! As PostgreSQL: ALL sets every deferrable constraint's mode for the rest of the
//! transaction; names set those constraints' (42704 for a name no constraint has, 55000
//! for a constraint that is not deferrable: only foreign keys can be here). IMMEDIATE
//! also runs the checks deferred so far for the constraints it names, so a violation is
//! reported by the SET CONSTRAINTS itself. Outside a transaction block it does nothing
//! but warn.

use super::{QueryResult, Session};
use crate::catalog;
use crate::dml;
use crate::error::{codes, Error, Result};
use txn::Txn;

impl Session {
    pub(super) fn set_constraints(
        &self,
        txn: &mut Txn,
        names: Option<&[String]>,
        deferred: bool,
    ) -> Result<QueryResult> {
        let bare: Option<Vec<String>> =
            names.map(|ns| ns.iter().map(|n| n.strip_prefix("public.").unwrap_or(n).to_string()).collect());
        match &bare {
            None => {
                let mut d = self.deferred.borrow_mut();
                d.all = Some(deferred);
                d.named.clear();
            }
            Some(names) => {
                let mut tables = Vec::new();
                for name in catalog::table_names(txn)? {
                    tables.push(catalog::table(txn, &name)?);
                }
                for name in names {
                    let fk = tables.iter().flat_map(|t| &t.foreign_keys).find(|f| f.name == *name);
                    let other = || {
                        tables.iter().any(|t| {
                            t.pk_name == *name
                                || t.indexes.iter().any(|i| i.constraint && i.name == *name)
                                || t.checks.iter().any(|(n, _)| n == name)
                        })
                    };
                    match fk {
                        Some(fk) if fk.deferrable => {}
                        Some(_) => return Err(not_deferrable(name)),
                        None if other() => return Err(not_deferrable(name)),
                        None => {
                            return Err(Error::new(
                                codes::UNDEFINED_OBJECT,
                                format!("constraint \"{name}\" does not exist"),
                            ))
                        }
                    }
                }
                let mut d = self.deferred.borrow_mut();
                for name in names {
                    d.named.insert(name.clone(), deferred);
                }
            }
        }
        if !deferred {
            dml::check_deferred(&mut self.exec(txn, &[]), bare.as_deref())?;
        }
        Ok(QueryResult::command("SET CONSTRAINTS"))
    }
}

fn not_deferrable(name: &str) -> Error {
    Error::new(codes::OBJECT_NOT_IN_PREREQUISITE_STATE, format!("constraint \"{name}\" is not deferrable"))
}
