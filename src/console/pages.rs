//! The console's pages, rendered from the API's data: Now, a lead, deliveries, connectors.

use serde_json::Value;

use super::html::{csrf_field, esc, text, time};

fn level(v: &Value) -> String {
    match v.as_str() {
        Some(l) => format!("<span class=\"level-{l}\">{}</span>", esc(l)),
        None => "–".into(),
    }
}

/// The delivery states of a rise: "hook delivered, crm dead (invalid_item)".
fn delivery_states(deliveries: &Value) -> String {
    deliveries
        .as_array()
        .into_iter()
        .flatten()
        .map(|d| {
            let state = d["state"].as_str().unwrap_or("?");
            let reason = d["reason"]
                .as_str()
                .filter(|_| state != "delivered")
                .map(|r| format!(" ({})", esc(r)))
                .unwrap_or_default();
            format!(
                "{} <span class=\"state-{state}\">{}</span>{reason}",
                text(&d["connector"]),
                esc(state)
            )
        })
        .collect::<Vec<_>>()
        .join(", ")
}

/// One row of the Now table (also sent live to an open page).
pub fn now_row(item: &Value) -> String {
    let id = item["visitorId"].as_str().unwrap_or_default();
    let key = now_key(item);
    let who = if item["kind"] == "account" {
        format!(
            "{} <span class=\"muted\">(account)</span>",
            text(&item["name"])
        )
    } else {
        text(&item["name"])
    };
    format!(
        "<tr id=\"rise-{}\"><td>{}</td><td><a href=\"/console/leads/{}\">{who}</a></td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
        esc(&key),
        time(&item["at"]),
        esc(id),
        text(&item["company"]),
        text(&item["score"]),
        level(&item["level"]),
        text(&item["why"]),
        time(&item["lastVisitAt"]),
        text(&item["claimedBy"]),
        crm_records(&item["crm"]),
        delivery_states(&item["deliveries"]),
    )
}

/// "hubspot 501, salesforce 00Q…": the CRM records of a lead or account.
fn crm_records(records: &Value) -> String {
    let list: Vec<String> = records
        .as_array()
        .into_iter()
        .flatten()
        .map(|r| match r["url"].as_str() {
            Some(url) if url.starts_with("https://") || url.starts_with("http://") => format!(
                "{} <a href=\"{}\" rel=\"noreferrer\">{}</a>",
                text(&r["connector"]),
                esc(url),
                text(&r["id"])
            ),
            _ => format!("{} {}", text(&r["connector"]), text(&r["id"])),
        })
        .collect();
    if list.is_empty() {
        "–".into()
    } else {
        list.join(", ")
    }
}

/// The key a row carries (for the live page not to add it twice): the lead and the moment.
pub fn rise_key(visitor: &str, at: i64) -> String {
    format!("{}-{at}", visitor.replace(':', "-"))
}

/// [`rise_key`] of a Now item.
pub fn now_key(item: &Value) -> String {
    rise_key(
        item["visitorId"].as_str().unwrap_or_default(),
        item["at"].as_i64().unwrap_or_default(),
    )
}

pub fn now(page: &Value, query: &super::NowQuery) -> String {
    let rows: String = page["items"]
        .as_array()
        .into_iter()
        .flatten()
        .map(now_row)
        .collect();
    let selected = |l: &str| {
        if query.level.as_deref() == Some(l) {
            " selected"
        } else {
            ""
        }
    };
    let next = page["next"]
        .as_str()
        .map(|n| {
            let mut q = url::form_urlencoded::Serializer::new(String::new());
            for (k, v) in [
                ("level", &query.level),
                ("route", &query.route),
                ("q", &query.q),
            ] {
                if let Some(v) = v.as_deref().filter(|v| !v.is_empty()) {
                    q.append_pair(k, v);
                }
            }
            q.append_pair("after", n);
            format!(
                "<p><a href=\"/console?{}\">Older rises →</a></p>",
                esc(&q.finish())
            )
        })
        .unwrap_or_default();
    format!(
        "<form class=\"filters\" method=\"get\" action=\"/console\">\
         <label>Level <select name=\"level\"><option value=\"\">any</option><option{} value=\"hot\">hot</option><option{} value=\"burning\">burning</option></select></label>\
         <label>Route <input name=\"route\" value=\"{}\"></label>\
         <label>Search <input name=\"q\" value=\"{}\"></label><button>Filter</button></form>\
         <p class=\"muted\">Rises to hot and burning of the last 7 days, newest first. New ones appear as they happen.</p>\
         <table id=\"now\"><thead><tr><th>Rose</th><th>Who</th><th>Company</th><th>Score</th><th>Level</th><th>Why</th><th>Last seen</th><th>Claimed by</th><th>In the CRMs</th><th>Delivered</th></tr></thead><tbody>{rows}</tbody></table>{next}",
        selected("hot"),
        selected("burning"),
        esc(query.route.as_deref().unwrap_or_default()),
        esc(query.q.as_deref().unwrap_or_default()),
    )
}

fn deliveries_table(deliveries: &Value) -> String {
    let rows: String = deliveries
        .as_array()
        .into_iter()
        .flatten()
        .map(|d| {
            let attempts: Vec<String> = d["attemptLog"]
                .as_array()
                .into_iter()
                .flatten()
                .map(|a| {
                    format!(
                        "{} {} {}",
                        time(&a["at"]),
                        text(&a["outcome"]),
                        a["error"].as_str().map(esc).unwrap_or_default()
                    )
                })
                .collect();
            format!(
                "<tr><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td class=\"state-{}\">{}</td><td>{}</td><td>{}</td></tr>",
                time(&d["createdAt"]),
                text(&d["triggerKind"]),
                text(&d["route"]),
                text(&d["connector"]),
                d["state"].as_str().unwrap_or(""),
                text(&d["state"]),
                text(&d["attempts"]),
                attempts.join("<br>"),
            )
        })
        .collect();
    format!("<table><thead><tr><th>Made</th><th>Trigger</th><th>Route</th><th>Connector</th><th>State</th><th>Attempts</th><th>Failures</th></tr></thead><tbody>{rows}</tbody></table>")
}

pub fn lead(page: &Value) -> (String, String) {
    if page["kind"] == "account" {
        let a = &page["account"];
        let title = format!(
            "{} (account)",
            a["company"]
                .as_str()
                .or(a["accountDomain"].as_str())
                .unwrap_or("account")
        );
        let body = format!(
            "<p>{} · score {} · {} · {} engaged of {} people</p>\
             <p>Why: {}</p><h2>Deliveries</h2>{}",
            text(&a["accountDomain"]),
            text(&a["accountScore"]),
            level(&a["accountLevel"]),
            text(&a["engagedPeople"]),
            text(&a["people"]),
            esc(&oie_connectors::templates::account_why(a)),
            deliveries_table(&page["deliveries"]),
        );
        return (title, body);
    }
    let l = &page["lead"];
    let name = [l["firstName"].as_str(), l["lastName"].as_str()]
        .into_iter()
        .flatten()
        .collect::<Vec<_>>()
        .join(" ");
    let title = if name.is_empty() {
        format!("Visitor {}", l["visitorId"].as_str().unwrap_or_default())
    } else {
        name
    };
    // Oldest to newest, as a story reads.
    let sessions: String = page["sessions"]
        .as_array()
        .into_iter()
        .flatten()
        .rev()
        .map(|s| {
            let events: String = s["events"]
                .as_array()
                .into_iter()
                .flatten()
                .map(|e| {
                    let data = if e["data"].is_null() {
                        String::new()
                    } else {
                        esc(&e["data"].to_string())
                    };
                    format!(
                        "<li>{} {} {} <span class=\"muted\">{data}</span></li>",
                        time(&e["at"]),
                        text(&e["type"]),
                        text(&e["path"])
                    )
                })
                .collect();
            format!(
                "<h3>{} · {} pageviews, {} s active, scroll {} %, {} forms</h3><ol>{events}</ol>",
                time(&s["startedAt"]),
                text(&s["pageviews"]),
                s["activeMs"].as_i64().unwrap_or(0) / 1000,
                text(&s["maxScrollDepth"]),
                text(&s["formSubmissions"]),
            )
        })
        .collect();
    let levels: String = page["levels"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|a| {
            format!(
                "<li>{} {} → {} ({})</li>",
                time(&a["at"]),
                text(&a["previousLevel"]),
                level(&a["level"]),
                text(&a["score"])
            )
        })
        .collect();
    let crm: String = page["crm"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|c| {
            let id = match c["url"].as_str() {
                Some(url) if url.starts_with("https://") || url.starts_with("http://") => format!(
                    "<a href=\"{}\" rel=\"noreferrer\">{}</a>",
                    esc(url),
                    text(&c["id"])
                ),
                _ => text(&c["id"]),
            };
            format!(
                "<li>{}: {id}{}</li>",
                text(&c["connector"]),
                c["ownerEmail"]
                    .as_str()
                    .map(|o| format!(" (owner {})", esc(o)))
                    .unwrap_or_default()
            )
        })
        .collect();
    let account = page["account"]["accountDomain"]
        .as_str()
        .map(|d| {
            format!(
                "<p>Account: <a href=\"/console/leads/account:{0}\">{0}</a></p>",
                esc(d)
            )
        })
        .unwrap_or_default();
    let body = format!(
        "<p>{} · {} · {} · score {} · {}</p><p>Why: {}</p>{account}\
         <h2>CRM records</h2><ul>{crm}</ul><h2>Score history</h2><ul>{levels}</ul>\
         <h2>Sessions</h2>{sessions}<h2>Deliveries</h2>{}",
        text(&l["email"]),
        text(&l["company"]),
        text(&l["title"]),
        text(&l["intentScore"]),
        level(&l["engagementLevel"]),
        esc(&oie_connectors::templates::why(l)),
        deliveries_table(&page["deliveries"]),
    );
    (title, body)
}

/// The outbox by connector and state.
pub fn queues(report: &[Value]) -> String {
    let rows: String = report
        .iter()
        .map(|c| {
            format!(
                "<tr><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
                text(&c["connector"]),
                text(&c["queued"]),
                text(&c["inflight"]),
                text(&c["dead"]),
                time(&c["oldestQueued"]),
            )
        })
        .collect();
    format!("<h2>The outbox</h2><table><thead><tr><th>Connector</th><th>Queued</th><th>In flight</th><th>Dead</th><th>Oldest queued</th></tr></thead><tbody>{rows}</tbody></table><h2>Dead letters</h2>")
}

pub fn deliveries(letters: &[crate::outbox::DeadLetter], csrf: &str) -> String {
    if letters.is_empty() {
        return "<p>No dead letters.</p>".into();
    }
    let rows: String = letters
        .iter()
        .map(|d| {
            format!(
                "<tr><td><input type=\"checkbox\" name=\"id\" value=\"{}\" aria-label=\"dead letter {}\"></td><td><a href=\"/console/deliveries/{}\">{}</a></td><td>{}</td><td>{} → {}</td><td><a href=\"/console/leads/{}\">{}</a></td><td>{}</td><td class=\"error\">{} {}</td></tr>",
                d.id,
                d.id,
                d.id,
                d.id,
                time(&Value::from(d.updated_at)),
                esc(&d.route),
                esc(&d.connector),
                esc(&d.visitor_id),
                esc(&d.visitor_id),
                d.attempts,
                esc(d.reason.as_deref().unwrap_or("-")),
                esc(&crate::redact::emails(d.error.as_deref().unwrap_or(""))),
            )
        })
        .collect();
    format!(
        "<form method=\"post\" action=\"/console/deliveries/replay\">{}\
         <table><thead><tr><th></th><th>Id</th><th>Failed</th><th>Route → connector</th><th>Lead</th><th>Attempts</th><th>Why</th></tr></thead><tbody>{rows}</tbody></table>\
         <p><button name=\"dry\" value=\"1\">Show what a replay sends</button> <button name=\"dry\" value=\"0\">Replay</button></p></form>",
        csrf_field(csrf)
    )
}

/// What operators did lately (replays, resumes).
pub fn actions(actions: &[Value]) -> String {
    if actions.is_empty() {
        return String::new();
    }
    let rows: String = actions
        .iter()
        .map(|a| {
            format!(
                "<tr><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
                time(&a["at"]),
                text(&a["via"]),
                text(&a["action"]),
                esc(&a["detail"].to_string())
            )
        })
        .collect();
    format!("<h2>What operators did</h2><table><thead><tr><th>When</th><th>Via</th><th>Action</th><th>Detail</th></tr></thead><tbody>{rows}</tbody></table>")
}

/// JSON pretty-printed for a page, e-mail addresses masked (they show on a lead's own page
/// only).
fn masked_json(v: &Value) -> String {
    esc(&crate::redact::emails(
        &serde_json::to_string_pretty(v).unwrap_or_default(),
    ))
}

/// One dead letter: why, what it sends, every attempt (e-mail addresses masked).
pub fn dead_letter(letter: &Value, csrf: &str) -> String {
    let pretty = masked_json;
    let attempts: String = letter["attempt_log"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|a| {
            format!(
                "<li>{} {} {} {}</li>",
                time(&a["at"]),
                text(&a["outcome"]),
                text(&a["reason"]),
                esc(&crate::redact::emails(a["error"].as_str().unwrap_or("")))
            )
        })
        .collect();
    format!(
        "<p>{} → {} · lead <a href=\"/console/leads/{}\">{}</a> · {} attempts · {}</p>\
         <p class=\"error\">{}</p><h2>Attempts</h2><ol>{attempts}</ol><h2>Payload</h2><pre>{}</pre>\
         <form method=\"post\" action=\"/console/deliveries/replay\">{}<input type=\"hidden\" name=\"id\" value=\"{}\">\
         <button name=\"dry\" value=\"1\">Show what a replay sends</button> <button name=\"dry\" value=\"0\">Replay</button></form>",
        text(&letter["route"]),
        text(&letter["connector"]),
        esc(letter["visitor_id"].as_str().unwrap_or_default()),
        text(&letter["visitor_id"]),
        text(&letter["attempts"]),
        text(&letter["reason"]),
        esc(&crate::redact::emails(letter["error"].as_str().unwrap_or(""))),
        pretty(&letter["payload"]),
        csrf_field(csrf),
        text(&letter["id"]),
    )
}

pub fn replayed(done: &Value) -> String {
    let letters: String = done["letters"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|l| match l["refused"].as_str() {
            Some(why) => format!("<h2>Dead letter {}: not replayed</h2><p class=\"error\">{}</p>", l["id"], esc(why)),
            None => {
                let pretty = masked_json;
                if l["changed"] == true {
                    format!(
                        "<h2>Dead letter {} → {}</h2><p>Sent before:</p><pre>{}</pre><p>Sends now:</p><pre>{}</pre>",
                        l["id"],
                        text(&l["connector"]),
                        pretty(&l["before"]),
                        pretty(&l["now"])
                    )
                } else {
                    format!(
                        "<h2>Dead letter {} → {}</h2><p>The payload is unchanged:</p><pre>{}</pre>",
                        l["id"],
                        text(&l["connector"]),
                        pretty(&l["now"])
                    )
                }
            }
        })
        .collect();
    let verb = if done["dryRun"] == true {
        "Would requeue"
    } else {
        "Requeued"
    };
    format!(
        "<p>{verb}: {}.</p>{letters}<p><a href=\"/console/deliveries\">Back to deliveries</a></p>",
        esc(&done["requeued"].to_string())
    )
}

pub fn connectors(report: &[Value], csrf: &str) -> String {
    let rows: String = report
        .iter()
        .map(|c| {
            let state = c["state"].as_str().unwrap_or("unknown");
            let held = matches!(state, "parked" | "open" | "half_open" | "throttled");
            let resume = if held {
                format!(
                    "<form method=\"post\" action=\"/console/connectors/{}/resume\" class=\"inline\">{}<button>Resume</button></form>",
                    esc(c["connector"].as_str().unwrap_or_default()),
                    csrf_field(csrf)
                )
            } else {
                String::new()
            };
            let vendor: Vec<String> = c["vendor"]
                .as_object()
                .into_iter()
                .flatten()
                .map(|(k, v)| format!("{} {}", esc(k), text(v)))
                .collect();
            format!(
                "<tr><td>{}</td><td>{}</td><td class=\"state-{state}\">{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{resume}</td></tr>",
                text(&c["connector"]),
                text(&c["kind"]),
                esc(state),
                [c["reason"].as_str(), c["detail"].as_str()]
                    .into_iter()
                    .flatten()
                    .map(esc)
                    .collect::<Vec<_>>()
                    .join(": "),
                text(&c["queued"]),
                time(&c["oldestQueued"]),
                text(&c["dead"]),
                time(&c["lastSuccess"]),
                vendor.join(", "),
            )
        })
        .collect();
    format!("<table><thead><tr><th>Connector</th><th>Kind</th><th>State</th><th>Why</th><th>Queued</th><th>Oldest queued</th><th>Dead</th><th>Last success</th><th>Vendor limits</th><th></th></tr></thead><tbody>{rows}</tbody></table>")
}
