//! CREATE ROLE, ALTER ROLE and DROP ROLE, in the statement's transaction like other DDL.
//! Only a superuser may manage roles; a role may change its own password.

use super::{QueryResult, Session};
use crate::ast::RoleOptions;
use crate::error::{codes, Error, Result};
use crate::roles::{self, Role, BOOTSTRAP_SUPERUSER};
use txn::Txn;

/// SQLSTATE 42501 insufficient_privilege.
const INSUFFICIENT_PRIVILEGE: &str = "42501";
/// SQLSTATE 42710 duplicate_object.
const DUPLICATE_OBJECT: &str = "42710";
/// SQLSTATE 2BP01 dependent_objects_still_exist.
const DEPENDENT_OBJECTS_STILL_EXIST: &str = "2BP01";

impl Session {
    fn is_superuser(&self, txn: &mut Txn) -> Result<bool> {
        Ok(roles::get(txn, &self.user)?.is_some_and(|r| r.superuser))
    }

    fn require_superuser(&self, txn: &mut Txn, what: &str) -> Result<()> {
        if self.is_superuser(txn)? {
            return Ok(());
        }
        Err(Error::new(INSUFFICIENT_PRIVILEGE, format!("permission denied to {what}"))
            .with_detail("Only superusers may manage roles."))
    }

    pub(super) fn create_role(&self, txn: &mut Txn, name: &str, o: &RoleOptions) -> Result<QueryResult> {
        self.require_superuser(txn, "create role")?;
        txn.lock_row_latest(&crate::catalog::keys::role(name), txn::LockMode::Exclusive, txn::WaitPolicy::Wait)?;
        if roles::get(txn, name)?.is_some() {
            return Err(Error::new(DUPLICATE_OBJECT, format!("role \"{name}\" already exists")));
        }
        let verifier = match &o.password {
            Some(Some(p)) => Some(roles::verifier_for(p)?),
            _ => None,
        };
        let role = Role {
            name: name.to_string(),
            superuser: o.superuser.unwrap_or(false),
            login: o.login.unwrap_or(false),
            verifier,
        };
        roles::put(txn, &role)?;
        Ok(QueryResult::command("CREATE ROLE"))
    }

    pub(super) fn alter_role(&self, txn: &mut Txn, name: &str, o: &RoleOptions) -> Result<QueryResult> {
        let own_password_only = name == self.user && o.superuser.is_none() && o.login.is_none();
        if !own_password_only {
            self.require_superuser(txn, "alter role")?;
        }
        txn.lock_row_latest(&crate::catalog::keys::role(name), txn::LockMode::Exclusive, txn::WaitPolicy::Wait)?;
        let Some(mut role) = roles::get(txn, name)? else {
            return Err(Error::new(codes::UNDEFINED_OBJECT, format!("role \"{name}\" does not exist")));
        };
        if name == BOOTSTRAP_SUPERUSER && (o.superuser == Some(false) || o.login == Some(false)) {
            return Err(Error::new(
                INSUFFICIENT_PRIVILEGE,
                format!("the bootstrap superuser \"{BOOTSTRAP_SUPERUSER}\" must stay a superuser that can log in"),
            ));
        }
        if let Some(s) = o.superuser {
            role.superuser = s;
        }
        if let Some(l) = o.login {
            role.login = l;
        }
        match &o.password {
            Some(Some(p)) => role.verifier = Some(roles::verifier_for(p)?),
            Some(None) => role.verifier = None,
            None => {}
        }
        roles::put(txn, &role)?;
        Ok(QueryResult::command("ALTER ROLE"))
    }

    pub(super) fn drop_roles(&self, txn: &mut Txn, names: &[String], if_exists: bool) -> Result<QueryResult> {
        self.require_superuser(txn, "drop role")?;
        let mut r = QueryResult::command("DROP ROLE");
        for name in names {
            if name == BOOTSTRAP_SUPERUSER || *name == self.user {
                return Err(Error::new(
                    DEPENDENT_OBJECTS_STILL_EXIST,
                    format!("role \"{name}\" cannot be dropped: it is the bootstrap superuser or the current user"),
                ));
            }
            txn.lock_row_latest(&crate::catalog::keys::role(name), txn::LockMode::Exclusive, txn::WaitPolicy::Wait)?;
            if roles::get(txn, name)?.is_none() {
                if if_exists {
                    r.notices.push(format!("role \"{name}\" does not exist, skipping"));
                    continue;
                }
                return Err(Error::new(codes::UNDEFINED_OBJECT, format!("role \"{name}\" does not exist")));
            }
            roles::delete(txn, name)?;
        }
        Ok(r)
    }
}
