//! Where `/go` sends a browser. One rule, shared with the Worker through
//! `contract/redirects.json`: resolve `to` the way a browser would (WHATWG URL) against the
//! site's origin; keep a same-origin result as a path and an `http(s)` URL on an allowed host as
//! it is; send anything else to `/`. The Location is checked once more before it is sent, so one
//! that a browser would read as another host (`//evil.example`, after dot segments collapse) is
//! never emitted.

use url::Url;

use crate::lead::is_id;

/// Stands in for the site's origin while resolving: only whether a result stays on it matters.
const SITE: &str = "https://oie-base.invalid/";

/// Where a redirect may go besides this site.
pub struct Redirects {
    /// Allowed hosts as URLs serialize them (lower case, IDN as punycode).
    hosts: Vec<String>,
}

impl Redirects {
    /// `hosts` as configured (`[server] redirect_hosts`); Unicode names match their punycode.
    pub fn new(hosts: &[String]) -> Redirects {
        let hosts = hosts
            .iter()
            .filter_map(|h| Url::parse(&format!("https://{}/", h.trim())).ok())
            .filter_map(|u| u.host_str().map(str::to_string))
            .collect();
        Redirects { hosts }
    }

    /// The visitor id and the Location for `/go` with this raw query string. The first `i` and
    /// the first `to` count, as in the Worker (`URLSearchParams.get`).
    pub fn resolve(&self, query: &str) -> (Option<String>, String) {
        let first = |name: &str| {
            url::form_urlencoded::parse(query.as_bytes())
                .find(|(k, _)| k == name)
                .map(|(_, v)| v.into_owned())
        };
        let id = first("i").filter(|v| is_id(v));
        let to = first("to").unwrap_or_else(|| "/".into());
        let location = self.location(&to, id.as_deref());
        (id, location)
    }

    /// The Location for `to`, with `id` appended as `i`.
    pub fn location(&self, to: &str, id: Option<&str>) -> String {
        let site = Url::parse(SITE).expect("the site stand-in parses");
        let Ok(mut target) = site.join(to) else {
            return "/".into();
        };
        let same_site = target.origin() == site.origin();
        if !same_site && !self.allowed(&target) {
            return "/".into();
        }
        set_id(&mut target, id);
        let location = if same_site {
            path_of(&target)
        } else {
            target.to_string()
        };
        if self.lands_here_or_allowed(&site, &location) {
            location
        } else {
            "/".into()
        }
    }

    fn allowed(&self, target: &Url) -> bool {
        matches!(target.scheme(), "http" | "https")
            && target.username().is_empty()
            && target.password().is_none()
            && target
                .host_str()
                .is_some_and(|h| self.hosts.iter().any(|a| a == h))
    }

    /// The last check: where a browser would go with this Location.
    fn lands_here_or_allowed(&self, site: &Url, location: &str) -> bool {
        if location.starts_with('/') {
            let second = location.as_bytes().get(1);
            return second != Some(&b'/')
                && second != Some(&b'\\')
                && site
                    .join(location)
                    .is_ok_and(|u| u.origin() == site.origin());
        }
        Url::parse(location).is_ok_and(|u| self.allowed(&u))
    }
}

/// Replaces any `i` in the target's query with `id` (or just drops it). The query is written
/// again as `application/x-www-form-urlencoded`, as `URLSearchParams` does in the Worker.
fn set_id(target: &mut Url, id: Option<&str>) {
    let pairs: Vec<(String, String)> = target
        .query_pairs()
        .filter(|(k, _)| k != "i")
        .map(|(k, v)| (k.into_owned(), v.into_owned()))
        .collect();
    let mut query = url::form_urlencoded::Serializer::new(String::new());
    query.extend_pairs(&pairs);
    if let Some(id) = id {
        query.append_pair("i", id);
    }
    let query = query.finish();
    target.set_query((!query.is_empty()).then_some(query.as_str()));
}

/// path?query#fragment of a same-site URL.
fn path_of(target: &Url) -> String {
    let mut out = target.path().to_string();
    if let Some(q) = target.query().filter(|q| !q.is_empty()) {
        out.push('?');
        out.push_str(q);
    }
    if let Some(f) = target.fragment().filter(|f| !f.is_empty()) {
        out.push('#');
        out.push_str(f);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every case of the contract's redirect vectors, which the Worker's tests read too.
    #[test]
    fn the_contract_redirect_vectors() {
        let vectors: serde_json::Value =
            serde_json::from_str(include_str!("../../contract/redirects.json")).unwrap();
        let hosts: Vec<String> = vectors["redirect_hosts"]
            .as_array()
            .unwrap()
            .iter()
            .map(|h| h.as_str().unwrap().to_string())
            .collect();
        let redirects = Redirects::new(&hosts);
        let cases = vectors["cases"].as_array().unwrap();
        assert!(cases.len() >= 40, "{} cases", cases.len());
        let failures: Vec<String> = cases
            .iter()
            .filter_map(|c| {
                let (_, got) = redirects.resolve(c["query"].as_str().unwrap());
                (got != c["location"].as_str().unwrap()).then(|| {
                    format!(
                        "{}: {} → {got}, expected {}",
                        c["name"], c["query"], c["location"]
                    )
                })
            })
            .collect();
        assert!(failures.is_empty(), "{}", failures.join("\n"));
    }
}
