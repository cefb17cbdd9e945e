//! Compiles a route's `when` and checks that it only names what exists: `lead.<field>`,
//! `trigger.<field>`, `account.<field>`, and variables that its own macros introduce. It also records which lead
//! fields the expression reads, so only those are converted to CEL values per lead.

use std::collections::BTreeSet;

use cel::common::ast::{EntryExpr, Expr};
use cel::{IdedExpr, Program};

use crate::lead;

/// The fields of `trigger`.
pub const TRIGGER_FIELDS: &[&str] = &["kind", "level", "previousLevel", "at"];

/// A compiled `when`, with the lead fields it reads.
#[derive(Debug)]
pub struct Condition {
    pub program: Program,
    /// The `lead` fields the expression reads; `None` when it uses `lead` as a whole.
    pub lead_fields: Option<BTreeSet<String>>,
}

/// Compiles `source`; the error says what is wrong in words a config author can act on.
pub fn compile_when(source: &str) -> Result<Condition, String> {
    let program = Program::compile(source).map_err(|e| {
        let first = e
            .errors
            .first()
            .map(|p| p.msg.clone())
            .unwrap_or_else(|| e.to_string());
        format!("CEL syntax error in `when`: {first}")
    })?;
    let mut walk = Walk::default();
    walk.check(program.expression())?;
    let lead_fields = (!walk.whole_lead).then_some(walk.lead_fields);
    Ok(Condition {
        program,
        lead_fields,
    })
}

/// Variables in scope, and what of `lead` has been read.
#[derive(Default)]
struct Walk {
    scope: Vec<String>,
    lead_fields: BTreeSet<String>,
    whole_lead: bool,
}

impl Walk {
    fn check(&mut self, e: &IdedExpr) -> Result<(), String> {
        match &e.expr {
            Expr::Ident(name) => {
                self.whole_lead |= name == "lead" && !self.in_scope(name);
                self.check_ident(name)
            }
            Expr::Select(select) => match &select.operand.expr {
                Expr::Ident(root) if !self.in_scope(root) => {
                    if root == "lead" {
                        self.lead_fields.insert(select.field.clone());
                    }
                    check_field(root, &select.field)
                }
                _ => self.check(&select.operand),
            },
            Expr::Call(call) => {
                if let Some(target) = &call.target {
                    self.check(target)?;
                }
                call.args.iter().try_for_each(|a| self.check(a))
            }
            Expr::List(list) => list.elements.iter().try_for_each(|a| self.check(a)),
            Expr::Map(map) => map
                .entries
                .iter()
                .try_for_each(|entry| self.check_entry(&entry.expr)),
            Expr::Struct(s) => s
                .entries
                .iter()
                .try_for_each(|entry| self.check_entry(&entry.expr)),
            Expr::Comprehension(c) => {
                self.check(&c.iter_range)?;
                let before = self.scope.len();
                self.scope.push(c.iter_var.clone());
                self.scope.push(c.accu_var.clone());
                self.scope.extend(c.iter_var2.clone());
                let result = [&c.accu_init, &c.loop_cond, &c.loop_step, &c.result]
                    .into_iter()
                    .try_for_each(|x| self.check(x));
                self.scope.truncate(before);
                result
            }
            Expr::Literal(_) | Expr::Unspecified => Ok(()),
        }
    }

    fn check_entry(&mut self, entry: &EntryExpr) -> Result<(), String> {
        match entry {
            EntryExpr::MapEntry(m) => self.check(&m.key).and_then(|()| self.check(&m.value)),
            EntryExpr::StructField(f) => self.check(&f.value),
        }
    }

    fn in_scope(&self, name: &str) -> bool {
        self.scope.iter().any(|s| s == name)
    }

    fn check_ident(&self, name: &str) -> Result<(), String> {
        if ["lead", "trigger", "account"].contains(&name) || self.in_scope(name) {
            Ok(())
        } else {
            Err(unknown_variable(name))
        }
    }
}

fn unknown_variable(name: &str) -> String {
    format!(
        "`when` refers to `{name}`, which does not exist; use `lead.<field>`, `trigger.<field>` or `account.<field>`"
    )
}

fn check_field(root: &str, field: &str) -> Result<(), String> {
    let known = match root {
        "lead" => lead::is_field(field),
        "trigger" => TRIGGER_FIELDS.contains(&field),
        "account" => crate::account::is_field(field),
        other => return Err(unknown_variable(other)),
    };
    if known {
        return Ok(());
    }
    let hint = match root {
        "lead" => "see the lead_profiles columns in the README".to_string(),
        "account" => "see the account_profiles columns in docs/scoring.md".to_string(),
        _ => format!("trigger has {}", TRIGGER_FIELDS.join(", ")),
    };
    Err(format!(
        "`when` refers to unknown field `{root}.{field}`; {hint}"
    ))
}
