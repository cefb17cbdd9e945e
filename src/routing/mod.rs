//! Routes: ordered CEL conditions over `lead`, `trigger` and `account`, first match wins unless
//! `continue`, and repeat suppression. Pure: no I/O, no clock but the one it is given.

mod expr;
#[cfg(test)]
mod tests;
mod trigger;

pub use expr::{compile_when, Condition};
pub use trigger::{rfc3339 as trigger_rfc3339, Trigger, TriggerKind};

use std::collections::{BTreeSet, HashMap};
use std::sync::Arc;
use std::time::Duration;

use cel::objects::{Key, Map};
use cel::{Context, Value};

use crate::lead::{Lead, Level, FIELDS};

/// One compiled `[[routes]]` entry.
pub struct Route {
    pub name: String,
    pub when: Condition,
    pub to: Vec<String>,
    pub continue_matching: bool,
    pub repeat_after: Option<Duration>,
    /// Digest window: deliveries wait this long and go out together.
    pub group_wait: Option<Duration>,
}

/// When a route last fired for a lead, and at which level.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LastFire {
    pub at_ms: i64,
    pub level: Level,
}

/// A route that matched; `suppressed` when `repeat_after` holds it back.
#[derive(Debug, Clone, Copy)]
pub struct RouteMatch<'r> {
    pub route: &'r Route,
    pub suppressed: bool,
}

impl std::fmt::Debug for Route {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Route")
            .field("name", &self.name)
            .field("to", &self.to)
            .finish()
    }
}

/// The ordered routes.
#[derive(Debug, Default)]
pub struct Router {
    routes: Vec<Route>,
    /// The lead fields any route reads (all of them when one uses `lead` whole).
    lead_fields: Vec<&'static str>,
}

/// One lead and trigger, converted to CEL values once for all routes.
pub struct Input {
    pub lead: Value,
    pub trigger: Value,
    /// The account: the lead's on a person's trigger (null when it has none), the one the
    /// trigger is about on an account's.
    pub account: Value,
    pub level: Level,
    pub now_ms: i64,
}

impl Router {
    pub fn new(routes: Vec<Route>) -> Router {
        let mut wanted = BTreeSet::new();
        let mut all = false;
        for r in &routes {
            match &r.when.lead_fields {
                Some(fields) => wanted.extend(fields.iter().cloned()),
                None => all = true,
            }
        }
        let lead_fields = FIELDS
            .iter()
            .map(|(name, _)| *name)
            .filter(|name| all || wanted.contains(*name))
            .collect();
        Router {
            routes,
            lead_fields,
        }
    }

    /// Converts a lead and trigger to CEL values once for all routes, with only the lead fields
    /// some route reads.
    /// The lead as CEL sees it: the fields some route reads. Made once per lead; every
    /// trigger of the lead shares it.
    pub fn lead_input(&self, lead: &Lead) -> Value {
        let fields: HashMap<Key, Value> = self
            .lead_fields
            .iter()
            .map(|name| {
                (
                    Key::String(Arc::new(name.to_string())),
                    cel_value(lead.get(name)),
                )
            })
            .collect();
        Value::Map(Map {
            map: Arc::new(fields),
        })
    }

    pub fn input(&self, lead: Value, trigger: &Trigger, now_ms: i64) -> Input {
        let text = |s: &str| Value::String(Arc::new(s.to_string()));
        let fields: HashMap<Key, Value> = [
            ("kind", text(trigger.kind.as_str())),
            ("level", text(trigger.level.as_str())),
            (
                "previousLevel",
                trigger
                    .previous_level
                    .map_or(Value::Null, |l| text(l.as_str())),
            ),
            ("at", text(&trigger::rfc3339(trigger.at_ms))),
        ]
        .into_iter()
        .map(|(k, v)| (Key::String(Arc::new(k.to_string())), v))
        .collect();
        Input {
            lead,
            // The same fields as `Trigger::to_json`, made without a JSON detour (per trigger).
            trigger: Value::Map(Map {
                map: Arc::new(fields),
            }),
            account: Value::Null,
            level: trigger.level,
            now_ms,
        }
    }

    pub fn routes(&self) -> &[Route] {
        &self.routes
    }

    /// Builds the CEL root context once; evaluate many inputs against it.
    pub fn evaluator(&self) -> Evaluator<'_> {
        Evaluator {
            router: self,
            root: Context::default(),
        }
    }
}

/// Evaluates inputs with one shared CEL root context (building one per lead costs ~10×).
pub struct Evaluator<'r> {
    router: &'r Router,
    root: Context<'static, 'static>,
}

impl<'r> Evaluator<'r> {
    /// The routes that match, in order; `last_fire(route)` tells when it last fired for
    /// this lead.
    pub fn evaluate(
        &self,
        input: &Input,
        last_fire: impl Fn(&str) -> Option<LastFire>,
    ) -> Vec<RouteMatch<'r>> {
        self.evaluate_among(input, last_fire, |_| true)
    }

    /// [`Evaluator::evaluate`] over the routes `eligible` keeps: the others are as if absent
    /// (an `identity` trigger is routed only among routes to connectors that hold identities).
    pub fn evaluate_among(
        &self,
        input: &Input,
        last_fire: impl Fn(&str) -> Option<LastFire>,
        eligible: impl Fn(&Route) -> bool,
    ) -> Vec<RouteMatch<'r>> {
        let mut scope = self.root.new_inner_scope();
        scope.add_variable_from_value("lead", input.lead.clone());
        scope.add_variable_from_value("trigger", input.trigger.clone());
        scope.add_variable_from_value("account", input.account.clone());
        let mut matches = Vec::new();
        for route in &self.router.routes {
            if !eligible(route) || !is_true(route, &scope) {
                continue;
            }
            let suppressed = suppressed(route, input, last_fire(&route.name));
            matches.push(RouteMatch { route, suppressed });
            if !route.continue_matching {
                break;
            }
        }
        matches
    }
}

/// An account as CEL sees it.
pub fn account_input(account: &crate::account::Account) -> Value {
    let fields: HashMap<Key, Value> = account
        .as_json()
        .iter()
        .map(|(k, v)| (Key::String(Arc::new(k.clone())), cel_value(v)))
        .collect();
    Value::Map(Map {
        map: Arc::new(fields),
    })
}

/// Lead fields are text, whole numbers or null.
fn cel_value(v: &serde_json::Value) -> Value {
    match v {
        serde_json::Value::String(s) => Value::String(Arc::new(s.clone())),
        serde_json::Value::Number(n) => match n.as_i64() {
            Some(i) => Value::Int(i),
            None => Value::Float(n.as_f64().unwrap_or(0.0)),
        },
        serde_json::Value::Bool(b) => Value::Bool(*b),
        serde_json::Value::Null => Value::Null,
        // Conversion of plain JSON cannot fail.
        other => cel::to_value(other).expect("JSON converts to CEL"),
    }
}

fn is_true(route: &Route, scope: &Context) -> bool {
    match route.when.program.execute(scope) {
        Ok(Value::Bool(b)) => b,
        Ok(other) => {
            tracing::warn!(route = %route.name, value = ?other, "route condition is not a bool; treated as false");
            false
        }
        Err(e) => {
            tracing::debug!(route = %route.name, error = %e, "route condition failed; treated as false");
            false
        }
    }
}

/// Inside `repeat_after` of the last fire, a repeat is held back unless the level rose.
fn suppressed(route: &Route, input: &Input, last: Option<LastFire>) -> bool {
    let (Some(window), Some(last)) = (route.repeat_after, last) else {
        return false;
    };
    let within = input.now_ms.saturating_sub(last.at_ms) < window.as_millis() as i64;
    within && input.level <= last.level
}
