use std::time::Duration;

use serde_json::json;

use super::*;
use crate::lead::Level;

fn route(name: &str, when: &str, cont: bool, repeat: Option<u64>) -> Route {
    Route {
        name: name.into(),
        when: compile_when(when).unwrap(),
        to: vec!["out".into()],
        continue_matching: cont,
        repeat_after: repeat.map(Duration::from_secs),
        group_wait: None,
    }
}

fn input(router: &Router, score: i64, level: Level, kind: TriggerKind) -> Input {
    let lead = json!({"visitorId": "v1", "intentScore": score, "company": "Acme",
                      "engagementLevel": level.as_str(), "pricingPageVisits": 2});
    let lead = crate::lead::Lead::from_json(lead.as_object().unwrap());
    let trigger = match kind {
        TriggerKind::Sync => Trigger::sync(level, 1, 1_000),
        _ => Trigger::hot_lead(level, Some(Level::Warm), 1, 1_000),
    };
    router.input(router.lead_input(&lead), &trigger, 10_000_000)
}

fn names(
    router: &Router,
    (score, level, kind): (i64, Level, TriggerKind),
    last: Option<LastFire>,
) -> Vec<(String, bool)> {
    let input = input(router, score, level, kind);
    router
        .evaluator()
        .evaluate(&input, |_| last)
        .iter()
        .map(|m| (m.route.name.clone(), m.suppressed))
        .collect()
}

#[test]
fn first_match_wins_unless_continue() {
    let router = Router::new(vec![
        route("burning", "lead.intentScore >= 80", false, None),
        route("hot", r#"trigger.kind == "hot_lead""#, true, None),
        route("all", "true", false, None),
        route("never", "true", false, None),
    ]);
    let cases: &[(i64, Level, TriggerKind, &[&str])] = &[
        (90, Level::Burning, TriggerKind::HotLead, &["burning"]),
        (65, Level::Hot, TriggerKind::HotLead, &["hot", "all"]),
        (65, Level::Hot, TriggerKind::Sync, &["all"]),
        (10, Level::Cold, TriggerKind::Sync, &["all"]),
    ];
    for (score, level, kind, expected) in cases {
        let got: Vec<String> = names(&router, (*score, *level, *kind), None)
            .into_iter()
            .map(|(n, _)| n)
            .collect();
        assert_eq!(got, *expected, "score {score} {kind:?}");
    }
}

#[test]
fn conditions_see_lead_and_trigger_fields() {
    let cases = [
        (
            r#"lead.company == "Acme" && lead.pricingPageVisits > 1"#,
            true,
        ),
        (r#"trigger.previousLevel == "warm""#, true),
        (r#"trigger.level in ["hot", "burning"]"#, true),
        (r#"lead.company.startsWith("Ac")"#, true),
        ("lead.intentScore > 99", false),
        // A failing expression (null compared with a number) is false, not a crash.
        ("lead.email > 3", false),
        // Not a bool: false.
        ("lead.intentScore", false),
    ];
    for (when, expected) in cases {
        let router = Router::new(vec![route("r", when, false, None)]);
        let matched = !names(&router, (70, Level::Hot, TriggerKind::HotLead), None).is_empty();
        assert_eq!(matched, expected, "{when}");
    }
}

#[test]
fn repeat_after_suppresses_unless_the_level_rose() {
    let router = Router::new(vec![route("r", "true", false, Some(24 * 3600))]);
    let now = 10_000_000;
    let hour = 3_600_000;
    let cases = [
        (None, Level::Hot, false),
        (Some((now - hour, Level::Hot)), Level::Hot, true),
        (Some((now - hour, Level::Hot)), Level::Burning, false),
        (Some((now - hour, Level::Burning)), Level::Hot, true),
        (Some((now - 25 * hour, Level::Hot)), Level::Hot, false),
    ];
    for (last, level, expected) in cases {
        let last = last.map(|(at_ms, level)| LastFire { at_ms, level });
        let got = names(&router, (70, level, TriggerKind::HotLead), last);
        assert_eq!(got, vec![("r".to_string(), expected)], "{last:?} {level:?}");
    }
}

#[test]
fn compile_errors_name_the_problem() {
    let cases = [
        ("lead.intentScore >", "CEL syntax error"),
        ("lead.intentScor > 3", "unknown field `lead.intentScor`"),
        ("trigger.kinds == 'x'", "unknown field `trigger.kinds`"),
        (
            "account.engaged_people >= 3",
            "unknown field `account.engaged_people`",
        ),
        ("leads.intentScore > 3", "refers to `leads`"),
        ("size(foo) > 0", "refers to `foo`"),
    ];
    for (when, expected) in cases {
        let err = compile_when(when).unwrap_err();
        assert!(err.contains(expected), "{when}: {err}");
    }
    // Only the lead fields a condition reads are converted for it.
    let c = compile_when(r#"lead.company == "x" || has(lead.title)"#).unwrap();
    assert_eq!(
        c.lead_fields.unwrap().into_iter().collect::<Vec<_>>(),
        vec!["company", "title"]
    );
    assert!(compile_when("size(lead) > 3")
        .unwrap()
        .lead_fields
        .is_none());
    // Macro variables are in scope inside their macro.
    compile_when(r#"[lead.company, lead.title].exists(x, x == "CTO")"#).unwrap();
    compile_when("has(lead.company)").unwrap();
}

/// Routes see the trigger templates see: the CEL value is built directly, not from JSON.
#[test]
fn the_trigger_routes_see_is_the_trigger_templates_see() {
    let router = Router::new(vec![]);
    for trigger in [
        Trigger::sync(Level::Warm, 3, 1_000),
        Trigger::hot_lead(Level::Hot, Some(Level::Warm), 4, 1_796_000_000_123),
        Trigger::hot_lead(Level::Burning, None, 5, 0),
    ] {
        let input = router.input(Value::Null, &trigger, 0);
        let from_json = cel::to_value(trigger.to_json()).unwrap();
        assert_eq!(input.trigger, from_json, "{trigger:?}");
    }
}

/// Routes `eligible` leaves out are as if absent: a first route that would stop the list does
/// not hide the one after it.
#[test]
fn routes_left_out_do_not_stop_the_list() {
    let mut identities = route("identities", "true", false, None);
    identities.to = vec!["kv".into()];
    let router = Router::new(vec![route("everything", "true", false, None), identities]);
    let input = input(&router, 50, Level::Warm, TriggerKind::Sync);
    let evaluator = router.evaluator();
    let all: Vec<String> = evaluator
        .evaluate(&input, |_| None)
        .iter()
        .map(|m| m.route.name.clone())
        .collect();
    assert_eq!(all, ["everything"]);
    let among: Vec<String> = evaluator
        .evaluate_among(&input, |_| None, |r| r.to.iter().any(|c| c == "kv"))
        .iter()
        .map(|m| m.route.name.clone())
        .collect();
    assert_eq!(among, ["identities"]);
}

/// The "why" fields: the score's parts (engagement a number to a tenth) and the top pages, a
/// list CEL's macros walk — read from the store's JSON text.
#[test]
fn conditions_see_why_the_score_is_what_it_is() {
    let lead = json!({"visitorId": "v1", "intentScore": 84, "engagementLevel": "burning",
        "scoreRecency": 30, "scoreHighIntent": 24, "scoreEngagement": 5.5,
        "topPages": r#"[{"path":"/pricing","views":3},{"path":"/","views":1}]"#});
    let lead = crate::lead::Lead::from_json(lead.as_object().unwrap());
    let cases = [
        ("lead.scoreHighIntent > 15", true),
        ("lead.scoreEngagement > 5.0", true),
        ("lead.scoreEngagement >= 6.0", false),
        (
            r#"lead.topPages.exists(p, p.path.startsWith("/pricing") && p.views >= 3)"#,
            true,
        ),
        ("size(lead.topPages) == 2", true),
        (r#"lead.topPages[0].path == "/""#, false),
    ];
    for (when, expected) in cases {
        let router = Router::new(vec![route("r", when, false, None)]);
        let trigger = Trigger::hot_lead(Level::Burning, Some(Level::Hot), 1, 1_000);
        let input = router.input(router.lead_input(&lead), &trigger, 10_000_000);
        let matched = !router.evaluator().evaluate(&input, |_| None).is_empty();
        assert_eq!(matched, expected, "{when}");
    }
}

/// `account` in conditions: the lead's account on a person's trigger (null without one), the
/// account itself on an account's; `account.engagedPeople >= 3` routes the account one way and
/// its people another.
#[test]
fn conditions_see_the_account() {
    let router = Router::new(vec![
        route(
            "big-accounts",
            r#"trigger.kind == "account_hot" && account.engagedPeople >= 3"#,
            false,
            None,
        ),
        route(
            "people-of-accounts",
            r#"trigger.kind == "hot_lead" && account != null && account.othersThisWeek >= 1"#,
            false,
            None,
        ),
        route("people", r#"trigger.kind == "hot_lead""#, false, None),
    ]);
    let account = |engaged: i64, others: i64| {
        let mut values = vec![serde_json::Value::Null; crate::account::FIELDS.len()];
        let at = |n: &str| {
            crate::account::FIELDS
                .iter()
                .position(|(f, _)| *f == n)
                .unwrap()
        };
        values[at("accountDomain")] = json!("acme.example");
        values[at("engagedPeople")] = json!(engaged);
        let mut a = crate::account::Account::from_values(values);
        a.set("othersThisWeek", json!(others));
        account_input(&a)
    };
    let lead = crate::lead::Lead::from_json(json!({"visitorId": "v1"}).as_object().unwrap());
    let matched = |trigger: &Trigger, account: Value| {
        let mut input = router.input(router.lead_input(&lead), trigger, 0);
        input.account = account;
        router
            .evaluator()
            .evaluate(&input, |_| None)
            .iter()
            .map(|m| m.route.name.clone())
            .collect::<Vec<_>>()
    };
    let account_hot = Trigger::account_hot(Level::Burning, Some(Level::Hot), 1, 0);
    let hot_lead = Trigger::hot_lead(Level::Hot, None, 1, 0);
    assert_eq!(matched(&account_hot, account(3, 0)), ["big-accounts"]);
    assert!(matched(&account_hot, account(2, 0)).is_empty());
    assert_eq!(matched(&hot_lead, account(3, 2)), ["people-of-accounts"]);
    assert_eq!(matched(&hot_lead, account(1, 0)), ["people"]);
    assert_eq!(matched(&hot_lead, Value::Null), ["people"], "no account");
}
