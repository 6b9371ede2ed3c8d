//! COPY, VACUUM and ANALYZE, read with `sqlparser`'s token-level methods: its own COPY
//! grammar misses PostgreSQL's option spellings (`FREEZE on`, `HEADER 1`, `FORMAT csv` with
//! legacy `CSV HEADER` after it), and it has no VACUUM for this dialect.
//!
//! ```text
//! COPY { table [ ( column [, ...] ) ] | ( query ) } { FROM STDIN | TO STDOUT }
//!      [ [ WITH ] ( option [, ...] ) ]            -- FORMAT, DELIMITER, NULL, HEADER, QUOTE,
//!                                                 -- ESCAPE, FORCE_QUOTE, FORCE_NOT_NULL,
//!                                                 -- FORCE_NULL, FREEZE, ENCODING
//!      [ [ WITH ] BINARY | CSV | HEADER | DELIMITER [AS] 'c' | NULL [AS] 's' | QUOTE [AS] 'q'
//!        | ESCAPE [AS] 'e' | FORCE QUOTE { column [, ...] | * } | FORCE NOT NULL column [, ...] ]
//! VACUUM [ ( option [, ...] ) ] [ FULL ] [ FREEZE ] [ VERBOSE ] [ ANALYZE ] [ table [, ...] ]
//! ANALYZE [ ( option [, ...] ) ] [ VERBOSE ] [ table [, ...] ]
//! CREATE { ROLE | USER } name [ [ WITH ] option ... ]
//! ALTER { ROLE | USER } name [ [ WITH ] option ... ]
//! DROP { ROLE | USER } [ IF EXISTS ] name [, ...]
//!     option: SUPERUSER | NOSUPERUSER | LOGIN | NOLOGIN | [ ENCRYPTED ] PASSWORD 'p'
//!           | PASSWORD NULL | CREATEDB | CREATEROLE | INHERIT | REPLICATION | BYPASSRLS
//!           (and their NO forms) | CONNECTION LIMIT n | VALID UNTIL 'timestamp'
//! ```

use super::{column_name, parser_error, query, relation_name};
use crate::ast::{CopyFormat, CopyOptions, CopySource, CopyStatement, ForceQuote, RoleOptions, Statement};
use crate::error::{codes, Error, Result};
use sqlparser::dialect::PostgreSqlDialect;
use sqlparser::keywords::Keyword;
use sqlparser::parser::Parser;
use sqlparser::tokenizer::{Token, TokenWithSpan};

/// Reads the statement if it is COPY, VACUUM or ANALYZE; None hands it back.
pub(super) fn parse(run: &[TokenWithSpan]) -> Result<Option<Statement>> {
    let first = run.iter().map(|t| &t.token).find(|t| !matches!(t, Token::Whitespace(_)));
    let Some(Token::Word(w)) = first else { return Ok(None) };
    if w.quote_style.is_some() {
        return Ok(None);
    }
    let dialect = PostgreSqlDialect {};
    let mut p = Parser::new(&dialect).with_tokens_with_locations(run.to_vec());
    let analyse = w.value.eq_ignore_ascii_case("analyse");
    let statement = match w.keyword {
        Keyword::COPY => {
            p.next_token();
            copy(&mut p)?
        }
        Keyword::VACUUM => {
            p.next_token();
            vacuum(&mut p)?
        }
        Keyword::CREATE | Keyword::ALTER | Keyword::DROP => {
            let verb = w.keyword;
            p.next_token();
            let is_role = match p.peek_token().token {
                Token::Word(r) => r.keyword == Keyword::ROLE || r.keyword == Keyword::USER,
                _ => false,
            };
            if !is_role {
                return Ok(None);
            }
            let user = p.next_token().token.to_string().eq_ignore_ascii_case("user");
            role(&mut p, verb, user)?
        }
        _ if w.keyword == Keyword::ANALYZE || analyse => {
            p.next_token();
            let tables = maintenance_tables(&mut p, &[Keyword::VERBOSE])?;
            Statement::Analyze(tables)
        }
        _ => return Ok(None),
    };
    expect_end(&mut p)?;
    Ok(Some(statement))
}

fn copy(p: &mut Parser) -> Result<Statement> {
    let source = if p.consume_token(&Token::LParen) {
        let q = p.parse_query().map_err(parser_error)?;
        p.expect_token(&Token::RParen).map_err(parser_error)?;
        CopySource::Query(Box::new(query(*q)?))
    } else {
        let name = relation_name(p.parse_object_name(false).map_err(parser_error)?)?;
        let columns = if p.consume_token(&Token::LParen) {
            let cols = p.parse_comma_separated(|p| p.parse_identifier()).map_err(parser_error)?;
            p.expect_token(&Token::RParen).map_err(parser_error)?;
            Some(cols.into_iter().map(super::ident).collect())
        } else {
            None
        };
        CopySource::Table { name, columns }
    };
    let from = match p.parse_one_of_keywords(&[Keyword::FROM, Keyword::TO]) {
        Some(Keyword::FROM) => true,
        Some(_) => false,
        None => return Err(near(p)),
    };
    if from && matches!(source, CopySource::Query(_)) {
        return Err(Error::new(codes::FEATURE_NOT_SUPPORTED, "COPY query FROM is not supported"));
    }
    match p.next_token().token {
        Token::Word(w) if w.keyword == Keyword::STDIN && from => {}
        Token::Word(w) if w.keyword == Keyword::STDOUT && !from => {}
        Token::Word(w) if w.keyword == Keyword::PROGRAM => {
            return Err(Error::new(
                codes::FEATURE_NOT_SUPPORTED,
                "COPY to or from an external program is not supported",
            ))
        }
        Token::SingleQuotedString(_) => {
            return Err(Error::new(
                codes::FEATURE_NOT_SUPPORTED,
                "COPY to or from a file on the server is not supported",
            )
            .with_hint(
                "Use COPY FROM STDIN / TO STDOUT, or psql's \\copy, which reads and writes files on the client.",
            ))
        }
        other => {
            return Err(Error::syntax(format!("syntax error at or near \"{other}\"")));
        }
    }
    let mut options = CopyOptions::default();
    let with = p.parse_keyword(Keyword::WITH);
    if p.consume_token(&Token::LParen) {
        let mut seen = Vec::new();
        loop {
            copy_option(p, &mut options, &mut seen)?;
            if !p.consume_token(&Token::Comma) {
                break;
            }
        }
        p.expect_token(&Token::RParen).map_err(parser_error)?;
    } else {
        legacy_options(p, &mut options)?;
    }
    let _ = with;
    if p.parse_keyword(Keyword::WHERE) {
        return Err(Error::new(codes::FEATURE_NOT_SUPPORTED, "COPY FROM ... WHERE is not supported"));
    }
    Ok(Statement::Copy(Box::new(CopyStatement { source, from, options })))
}

/// One `name [value]` of the parenthesized option list.
fn copy_option(p: &mut Parser, o: &mut CopyOptions, seen: &mut Vec<String>) -> Result<()> {
    let name = match p.next_token().token {
        Token::Word(w) => w.value.to_ascii_lowercase(),
        other => return Err(Error::syntax(format!("syntax error at or near \"{other}\""))),
    };
    if seen.contains(&name) {
        return Err(Error::syntax("conflicting or redundant options"));
    }
    seen.push(name.clone());
    match name.as_str() {
        "format" => {
            let f = word_or_string(p)?;
            o.format = match f.to_ascii_lowercase().as_str() {
                "text" => CopyFormat::Text,
                "csv" => CopyFormat::Csv,
                "binary" => CopyFormat::Binary,
                _ => {
                    return Err(Error::new(
                        codes::INVALID_PARAMETER_VALUE,
                        format!("COPY format \"{f}\" not recognized"),
                    ))
                }
            };
        }
        "freeze" => {
            boolean(p, "freeze")?;
        }
        "header" => {
            o.header = boolean(p, "header")?;
        }
        "delimiter" => o.delimiter = Some(string(p)?),
        "null" => o.null = Some(string(p)?),
        "quote" => o.quote = Some(string(p)?),
        "escape" => o.escape = Some(string(p)?),
        "encoding" => {
            let e = string(p)?;
            let norm = e.to_ascii_lowercase().replace(['-', '_'], "");
            if norm != "utf8" && norm != "unicode" && norm != "sqlascii" {
                return Err(Error::new(
                    codes::FEATURE_NOT_SUPPORTED,
                    format!("COPY encoding \"{e}\" is not supported: Bulwark speaks UTF8 only"),
                ));
            }
        }
        "force_quote" => {
            o.force_quote =
                if p.consume_token(&Token::Mul) { ForceQuote::All } else { ForceQuote::Columns(columns(p)?) }
        }
        "force_not_null" => o.force_not_null = columns(p)?,
        "force_null" => o.force_null = columns(p)?,
        _ => {
            return Err(Error::syntax(format!("option \"{name}\" not recognized")));
        }
    }
    Ok(())
}

/// PostgreSQL's pre-9.0 option spellings, which psql's `\copy` still sends.
fn legacy_options(p: &mut Parser, o: &mut CopyOptions) -> Result<()> {
    loop {
        if p.parse_keyword(Keyword::BINARY) {
            o.format = CopyFormat::Binary;
        } else if p.parse_keyword(Keyword::CSV) {
            o.format = CopyFormat::Csv;
        } else if p.parse_keyword(Keyword::HEADER) {
            o.header = true;
        } else if p.parse_keyword(Keyword::DELIMITER) {
            let _ = p.parse_keyword(Keyword::AS);
            o.delimiter = Some(string(p)?);
        } else if p.parse_keyword(Keyword::NULL) {
            let _ = p.parse_keyword(Keyword::AS);
            o.null = Some(string(p)?);
        } else if p.parse_keyword(Keyword::QUOTE) {
            let _ = p.parse_keyword(Keyword::AS);
            o.quote = Some(string(p)?);
        } else if p.parse_keyword(Keyword::ESCAPE) {
            let _ = p.parse_keyword(Keyword::AS);
            o.escape = Some(string(p)?);
        } else if p.parse_keywords(&[Keyword::FORCE, Keyword::QUOTE]) {
            o.force_quote =
                if p.consume_token(&Token::Mul) { ForceQuote::All } else { ForceQuote::Columns(bare_columns(p)?) };
        } else if p.parse_keywords(&[Keyword::FORCE, Keyword::NOT, Keyword::NULL]) {
            o.force_not_null = bare_columns(p)?;
        } else {
            return Ok(());
        }
    }
}

fn vacuum(p: &mut Parser) -> Result<Statement> {
    let mut analyze = false;
    if p.consume_token(&Token::LParen) {
        loop {
            let name = match p.next_token().token {
                Token::Word(w) => w.value.to_ascii_lowercase(),
                other => return Err(Error::syntax(format!("syntax error at or near \"{other}\""))),
            };
            let on = boolean(p, &name)?;
            match name.as_str() {
                "analyze" | "analyse" => analyze = on,
                "full"
                | "freeze"
                | "verbose"
                | "skip_locked"
                | "index_cleanup"
                | "truncate"
                | "disable_page_skipping"
                | "process_toast"
                | "parallel" => {}
                _ => return Err(Error::syntax(format!("unrecognized VACUUM option \"{name}\""))),
            }
            if !p.consume_token(&Token::Comma) {
                break;
            }
        }
        p.expect_token(&Token::RParen).map_err(parser_error)?;
    }
    loop {
        if let Some(k) = p.parse_one_of_keywords(&[Keyword::FULL, Keyword::FREEZE, Keyword::VERBOSE, Keyword::ANALYZE])
        {
            analyze |= k == Keyword::ANALYZE;
        } else if matches!(&p.peek_token().token, Token::Word(w) if w.value.eq_ignore_ascii_case("analyse")) {
            p.next_token();
            analyze = true;
        } else {
            break;
        }
    }
    let tables = maintenance_tables(p, &[])?;
    Ok(Statement::Vacuum { tables, analyze })
}

fn role(p: &mut Parser, verb: Keyword, user: bool) -> Result<Statement> {
    if verb == Keyword::DROP {
        let if_exists = p.parse_keywords(&[Keyword::IF, Keyword::EXISTS]);
        let names = p.parse_comma_separated(|p| p.parse_identifier()).map_err(parser_error)?;
        return Ok(Statement::DropRole { names: names.into_iter().map(super::ident).collect(), if_exists });
    }
    let name = super::ident(p.parse_identifier().map_err(parser_error)?);
    if verb == Keyword::ALTER && p.parse_keyword(Keyword::RENAME) {
        return Err(Error::unsupported("ALTER ROLE ... RENAME"));
    }
    if verb == Keyword::ALTER && p.parse_keyword(Keyword::SET) {
        return Err(Error::unsupported("ALTER ROLE ... SET"));
    }
    let _ = p.parse_keyword(Keyword::WITH);
    let mut options = RoleOptions::default();
    if verb == Keyword::CREATE && user {
        options.login = Some(true);
    }
    while let Token::Word(w) = p.peek_token().token {
        let word = w.value.to_ascii_lowercase();
        match word.as_str() {
            "superuser" | "nosuperuser" => options.superuser = Some(word == "superuser"),
            "login" | "nologin" => options.login = Some(word == "login"),
            "createdb" | "nocreatedb" | "createrole" | "nocreaterole" | "inherit" | "noinherit" | "replication"
            | "noreplication" | "bypassrls" | "nobypassrls" => {}
            "encrypted" | "password" => {
                p.next_token();
                if word == "encrypted" && !p.parse_keyword(Keyword::PASSWORD) {
                    return Err(near(p));
                }
                options.password = Some(match p.next_token().token {
                    Token::SingleQuotedString(s) | Token::EscapedStringLiteral(s) => Some(s),
                    Token::Word(n) if n.keyword == Keyword::NULL => None,
                    other => return Err(Error::syntax(format!("syntax error at or near \"{other}\""))),
                });
                continue;
            }
            "connection" => {
                p.next_token();
                if !p.parse_keyword(Keyword::LIMIT) {
                    return Err(near(p));
                }
                let _ = p.consume_token(&Token::Minus);
                match p.next_token().token {
                    Token::Number(_, _) => {}
                    other => return Err(Error::syntax(format!("syntax error at or near \"{other}\""))),
                }
                continue;
            }
            "valid" => {
                p.next_token();
                if !p.parse_keyword(Keyword::UNTIL) {
                    return Err(near(p));
                }
                string(p)?;
                continue;
            }
            _ => break,
        }
        p.next_token();
    }
    Ok(if verb == Keyword::CREATE {
        Statement::CreateRole { name, options }
    } else {
        Statement::AlterRole { name, options }
    })
}

/// `[ ( option, ... ) ] [ skip... ] [ table [ ( column, ... ) ] [, ...] ]`.
fn maintenance_tables(p: &mut Parser, skip: &[Keyword]) -> Result<Vec<String>> {
    if p.consume_token(&Token::LParen) {
        // ANALYZE's (VERBOSE, SKIP_LOCKED): they change no result.
        loop {
            let _ = p.next_token();
            let _ = boolean(p, "option")?;
            if !p.consume_token(&Token::Comma) {
                break;
            }
        }
        p.expect_token(&Token::RParen).map_err(parser_error)?;
    }
    while p.parse_one_of_keywords(skip).is_some() {}
    let mut tables = Vec::new();
    if matches!(p.peek_token().token, Token::EOF) {
        return Ok(tables);
    }
    loop {
        tables.push(relation_name(p.parse_object_name(false).map_err(parser_error)?)?);
        if p.consume_token(&Token::LParen) {
            // A column list narrows ANALYZE; statistics are per table here.
            let _ = p.parse_comma_separated(|p| p.parse_identifier()).map_err(parser_error)?;
            p.expect_token(&Token::RParen).map_err(parser_error)?;
        }
        if !p.consume_token(&Token::Comma) {
            return Ok(tables);
        }
    }
}

/// An option's optional boolean value: TRUE/FALSE/ON/OFF/1/0 or nothing (true).
fn boolean(p: &mut Parser, option: &str) -> Result<bool> {
    let t = p.peek_token().token;
    let text = match &t {
        Token::Word(w) if w.keyword != Keyword::NoKeyword || w.quote_style.is_none() => w.value.to_ascii_lowercase(),
        Token::SingleQuotedString(s) => s.to_ascii_lowercase(),
        Token::Number(n, _) => n.clone(),
        _ => return Ok(true),
    };
    let value = match text.as_str() {
        "true" | "on" | "1" => true,
        "false" | "off" | "0" => false,
        // Not a value: the next option or the end of the list.
        _ if matches!(t, Token::Word(_)) => return Ok(true),
        _ => return Err(Error::new(codes::INVALID_PARAMETER_VALUE, format!("{option} requires a Boolean value"))),
    };
    p.next_token();
    Ok(value)
}

fn string(p: &mut Parser) -> Result<String> {
    match p.next_token().token {
        Token::SingleQuotedString(s) | Token::EscapedStringLiteral(s) => Ok(s),
        other => Err(Error::syntax(format!("syntax error at or near \"{other}\""))),
    }
}

fn word_or_string(p: &mut Parser) -> Result<String> {
    match p.next_token().token {
        Token::SingleQuotedString(s) => Ok(s),
        Token::Word(w) => Ok(w.value),
        other => Err(Error::syntax(format!("syntax error at or near \"{other}\""))),
    }
}

/// `( column [, ...] )`.
fn columns(p: &mut Parser) -> Result<Vec<String>> {
    p.expect_token(&Token::LParen).map_err(parser_error)?;
    let cols = bare_columns(p)?;
    p.expect_token(&Token::RParen).map_err(parser_error)?;
    Ok(cols)
}

/// `column [, ...]`.
fn bare_columns(p: &mut Parser) -> Result<Vec<String>> {
    let ids = p.parse_comma_separated(|p| p.parse_object_name(false)).map_err(parser_error)?;
    ids.into_iter().map(column_name).collect()
}

fn expect_end(p: &mut Parser) -> Result<()> {
    match p.next_token().token {
        Token::EOF => Ok(()),
        other => Err(Error::syntax(format!("syntax error at or near \"{other}\""))),
    }
}

fn near(p: &mut Parser) -> Error {
    match p.peek_token().token {
        Token::EOF => Error::syntax("syntax error at end of input"),
        other => Error::syntax(format!("syntax error at or near \"{other}\"")),
    }
}
