//! pg_settings: the session's settings with PostgreSQL's descriptions of them.

use crate::eval::array;
use crate::exec::Row;
use crate::types::Value;

/// What pg_settings says about a setting besides its value.
struct Meta {
    /// The name as pg_settings spells it (`DateStyle`); the session keys it in lower case.
    name: &'static str,
    category: &'static str,
    short_desc: &'static str,
    context: &'static str,
    vartype: &'static str,
    unit: Option<&'static str>,
    /// Bulwark's default.
    boot: &'static str,
    enumvals: &'static [&'static str],
}

const BEHAVIOR: &str = "Client Connection Defaults / Statement Behavior";
const LOCALE: &str = "Client Connection Defaults / Locale and Formatting";
const PRESET: &str = "Preset Options";

const fn m(
    name: &'static str,
    category: &'static str,
    short_desc: &'static str,
    context: &'static str,
    vartype: &'static str,
    unit: Option<&'static str>,
    boot: &'static str,
) -> Meta {
    Meta { name, category, short_desc, context, vartype, unit, boot, enumvals: &[] }
}

static SETTINGS: &[Meta] = &[
    m(
        "application_name",
        "Reporting and Logging / What to Log",
        "Sets the application name to be reported in statistics and logs.",
        "user",
        "string",
        None,
        "",
    ),
    m("client_encoding", LOCALE, "Sets the client's character set encoding.", "user", "string", None, "UTF8"),
    m("DateStyle", LOCALE, "Sets the display format for date and time values.", "user", "string", None, "ISO, MDY"),
    m(
        "deadlock_timeout",
        "Lock Management",
        "Sets the time to wait on a lock before checking for deadlock.",
        "superuser",
        "integer",
        Some("ms"),
        "1s",
    ),
    Meta {
        enumvals: &["serializable", "repeatable read", "read committed", "read uncommitted"],
        ..m(
            "default_transaction_isolation",
            BEHAVIOR,
            "Sets the transaction isolation level of each new transaction.",
            "user",
            "enum",
            None,
            "read committed",
        )
    },
    m(
        "default_transaction_read_only",
        BEHAVIOR,
        "Sets the default read-only status of new transactions.",
        "user",
        "bool",
        None,
        "off",
    ),
    m(
        "extra_float_digits",
        LOCALE,
        "Sets the number of digits displayed for floating-point values.",
        "user",
        "integer",
        None,
        "1",
    ),
    m(
        "idle_in_transaction_session_timeout",
        BEHAVIOR,
        "Sets the maximum allowed idle time between queries, when in a transaction.",
        "user",
        "integer",
        Some("ms"),
        "0",
    ),
    m("integer_datetimes", PRESET, "Shows whether datetimes are integer based.", "internal", "bool", None, "on"),
    Meta {
        enumvals: &["postgres", "postgres_verbose", "sql_standard", "iso_8601"],
        ..m("IntervalStyle", LOCALE, "Sets the display format for interval values.", "user", "enum", None, "postgres")
    },
    m(
        "lock_timeout",
        BEHAVIOR,
        "Sets the maximum allowed duration of any wait for a lock.",
        "user",
        "integer",
        Some("ms"),
        "0",
    ),
    m(
        "max_connections",
        "Connections and Authentication / Connection Settings",
        "Sets the maximum number of concurrent connections.",
        "postmaster",
        "integer",
        None,
        "100",
    ),
    m(
        "search_path",
        BEHAVIOR,
        "Sets the schema search order for names that are not schema-qualified.",
        "user",
        "string",
        None,
        "\"$user\", public",
    ),
    m(
        "server_encoding",
        PRESET,
        "Shows the server (database) character set encoding.",
        "internal",
        "string",
        None,
        "UTF8",
    ),
    m("server_version", PRESET, "Shows the server version.", "internal", "string", None, "15.0"),
    m("server_version_num", PRESET, "Shows the server version as an integer.", "internal", "integer", None, "150000"),
    m(
        "standard_conforming_strings",
        "Version and Platform Compatibility / Previous PostgreSQL Versions",
        "Causes '...' strings to treat backslashes literally.",
        "user",
        "bool",
        None,
        "on",
    ),
    m(
        "statement_timeout",
        BEHAVIOR,
        "Sets the maximum allowed duration of any statement.",
        "user",
        "integer",
        Some("ms"),
        "0",
    ),
    m(
        "TimeZone",
        LOCALE,
        "Sets the time zone for displaying and interpreting time stamps.",
        "user",
        "string",
        None,
        "UTC",
    ),
];

/// One row per session setting, in the session's (name) order.
pub fn rows(settings: &[(String, String)]) -> Vec<Row> {
    let text = |s: &str| Value::Text(s.to_string());
    settings
        .iter()
        .map(|(name, value)| {
            let meta = SETTINGS.iter().find(|m| m.name.eq_ignore_ascii_case(name));
            let (shown, category, desc, context, vartype, unit, boot, enumvals) = match meta {
                Some(m) => (m.name, m.category, m.short_desc, m.context, m.vartype, m.unit, Some(m.boot), m.enumvals),
                None => (name.as_str(), "Customized Options", "", "user", "string", None, None, &[][..]),
            };
            let source = if boot == Some(value.as_str()) { "default" } else { "session" };
            let enumvals = if enumvals.is_empty() {
                Value::Null
            } else {
                Value::Text(array::format(&enumvals.iter().map(|v| Some(v.to_string())).collect::<Vec<_>>()))
            };
            vec![
                text(shown),
                text(value),
                unit.map_or(Value::Null, text),
                text(category),
                text(desc),
                Value::Null,
                text(context),
                text(vartype),
                text(source),
                Value::Null,
                Value::Null,
                enumvals,
                boot.map_or(Value::Null, text),
                text(boot.unwrap_or(value)),
                Value::Null,
                Value::Null,
                Value::Bool(false),
            ]
        })
        .collect()
}
