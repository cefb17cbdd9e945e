//! Compiles a route's `when` and checks that it only names what exists: `lead.<field>`,
//! `trigger.<field>`, and variables that its own macros introduce.

use cel::common::ast::{EntryExpr, Expr};
use cel::{IdedExpr, Program};

use crate::lead;

/// The fields of `trigger`.
pub const TRIGGER_FIELDS: &[&str] = &["kind", "level", "previousLevel", "at"];

/// Compiles `source`; the error says what is wrong in words a config author can act on.
pub fn compile_when(source: &str) -> Result<Program, String> {
    let program = Program::compile(source).map_err(|e| {
        let first = e
            .errors
            .first()
            .map(|p| p.msg.clone())
            .unwrap_or_else(|| e.to_string());
        format!("CEL syntax error in `when`: {first}")
    })?;
    let mut scope = Vec::new();
    check(program.expression(), &mut scope)?;
    Ok(program)
}

fn check(e: &IdedExpr, scope: &mut Vec<String>) -> Result<(), String> {
    match &e.expr {
        Expr::Ident(name) => check_ident(name, scope),
        Expr::Select(select) => {
            if let Expr::Ident(root) = &select.operand.expr {
                if !scope.contains(root) {
                    return check_field(root, &select.field);
                }
            }
            check(&select.operand, scope)
        }
        Expr::Call(call) => {
            if let Some(target) = &call.target {
                check(target, scope)?;
            }
            call.args.iter().try_for_each(|a| check(a, scope))
        }
        Expr::List(list) => list.elements.iter().try_for_each(|a| check(a, scope)),
        Expr::Map(map) => map.entries.iter().try_for_each(|entry| match &entry.expr {
            EntryExpr::MapEntry(m) => check(&m.key, scope).and(check(&m.value, scope)),
            EntryExpr::StructField(f) => check(&f.value, scope),
        }),
        Expr::Struct(s) => s.entries.iter().try_for_each(|entry| match &entry.expr {
            EntryExpr::MapEntry(m) => check(&m.value, scope),
            EntryExpr::StructField(f) => check(&f.value, scope),
        }),
        Expr::Comprehension(c) => {
            check(&c.iter_range, scope)?;
            let added = 2 + usize::from(c.iter_var2.is_some());
            scope.push(c.iter_var.clone());
            scope.push(c.accu_var.clone());
            if let Some(v) = &c.iter_var2 {
                scope.push(v.clone());
            }
            let result = [&c.accu_init, &c.loop_cond, &c.loop_step, &c.result]
                .into_iter()
                .try_for_each(|x| check(x, scope));
            scope.truncate(scope.len() - added);
            result
        }
        Expr::Literal(_) | Expr::Unspecified => Ok(()),
    }
}

fn check_ident(name: &str, scope: &[String]) -> Result<(), String> {
    if name == "lead" || name == "trigger" || scope.iter().any(|s| s == name) {
        Ok(())
    } else {
        Err(format!(
            "`when` refers to `{name}`, which does not exist; use `lead.<field>` or `trigger.<field>`"
        ))
    }
}

fn check_field(root: &str, field: &str) -> Result<(), String> {
    let known = match root {
        "lead" => lead::is_field(field),
        "trigger" => TRIGGER_FIELDS.contains(&field),
        other => return check_ident(other, &[]),
    };
    if known {
        return Ok(());
    }
    let hint = match root {
        "lead" => "see the lead_profiles columns in the README".to_string(),
        _ => format!("trigger has {}", TRIGGER_FIELDS.join(", ")),
    };
    Err(format!(
        "`when` refers to unknown field `{root}.{field}`; {hint}"
    ))
}
