//! A batch as a vendor's bulk API sees it: one item per record key. Two deliveries for the same
//! record (a lead's `hot_lead` and `sync` in one batch) become one item, and both get its
//! outcome; a delivery whose stored payload cannot be read gets its outcome at once.

use crate::{Delivery, Outcome, Reason};

pub struct Keyed<T> {
    items: Vec<(String, T)>,
    owners: Vec<Vec<usize>>,
    outcomes: Vec<Option<Outcome>>,
}

impl<T> Keyed<T> {
    /// `parse` gives a delivery's record key and item, or the outcome of a payload that can
    /// never be sent; `merge(earlier, later)` folds a later item into an earlier one with the
    /// same key.
    pub fn new(
        batch: &[Delivery],
        parse: impl Fn(&Delivery) -> Result<(String, T), Outcome>,
        merge: impl Fn(&mut T, T),
    ) -> Keyed<T> {
        let mut keyed = Keyed {
            items: Vec::new(),
            owners: Vec::new(),
            outcomes: vec![None; batch.len()],
        };
        let mut at: std::collections::HashMap<String, usize> = Default::default();
        for (i, delivery) in batch.iter().enumerate() {
            let (key, item) = match parse(delivery) {
                Ok(parsed) => parsed,
                Err(outcome) => {
                    keyed.outcomes[i] = Some(outcome);
                    continue;
                }
            };
            match at.get(&key) {
                Some(&j) => {
                    merge(&mut keyed.items[j].1, item);
                    keyed.owners[j].push(i);
                }
                None => {
                    at.insert(key.clone(), keyed.items.len());
                    keyed.items.push((key, item));
                    keyed.owners.push(vec![i]);
                }
            }
        }
        keyed
    }

    /// (key, item), in the order of their first delivery.
    pub fn items(&self) -> &[(String, T)] {
        &self.items
    }

    /// One outcome per delivery, in order, from one result per item.
    pub fn finish(mut self, results: Vec<Outcome>, vendor: &str) -> Vec<Outcome> {
        for (owners, result) in self.owners.iter().zip(results) {
            for &d in owners {
                self.outcomes[d] = Some(result.clone());
            }
        }
        self.outcomes
            .into_iter()
            .map(|o| {
                o.unwrap_or_else(|| {
                    Outcome::failed(Reason::ServerError, format!("{vendor}: no outcome"))
                })
            })
            .collect()
    }
}

/// Sends the deliveries `first` picks to `a` and the others to `b` (each part only when it has
/// any); the outcomes come back in the batch's order.
pub async fn partition<A, B>(
    batch: &[Delivery],
    first: impl Fn(&Delivery) -> bool,
    a: A,
    b: B,
) -> Vec<Outcome>
where
    A: AsyncFnOnce(&[Delivery]) -> Vec<Outcome>,
    B: AsyncFnOnce(&[Delivery]) -> Vec<Outcome>,
{
    let (left, right): (Vec<usize>, Vec<usize>) = (0..batch.len()).partition(|i| first(&batch[*i]));
    if right.is_empty() {
        return a(batch).await;
    }
    if left.is_empty() {
        return b(batch).await;
    }
    let mut outcomes: Vec<Option<Outcome>> = vec![None; batch.len()];
    let part = |ix: &[usize]| ix.iter().map(|i| batch[*i].clone()).collect::<Vec<_>>();
    for (i, o) in left.iter().zip(a(&part(&left)).await) {
        outcomes[*i] = Some(o);
    }
    for (i, o) in right.iter().zip(b(&part(&right)).await) {
        outcomes[*i] = Some(o);
    }
    outcomes
        .into_iter()
        .map(|o| {
            o.unwrap_or_else(|| {
                Outcome::failed(
                    Reason::ServerError,
                    "the connector returned too few outcomes",
                )
            })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn d(payload: &str) -> Delivery {
        Delivery {
            key: payload.into(),
            visitor_id: "v".into(),
            payload: payload.into(),
            attempt: 1,
        }
    }

    #[test]
    fn one_item_per_key_and_every_delivery_answered() {
        let batch = [d("a1"), d("b1"), d("bad"), d("a2")];
        let keyed = Keyed::new(
            &batch,
            |d| match d.payload.as_str() {
                "bad" => Err(Outcome::failed(Reason::InvalidItem, "unreadable")),
                p => Ok((p[..1].to_string(), p.to_string())),
            },
            |earlier: &mut String, later| *earlier = format!("{earlier}+{later}"),
        );
        let items: Vec<_> = keyed.items().to_vec();
        assert_eq!(
            items,
            [
                ("a".to_string(), "a1+a2".to_string()),
                ("b".into(), "b1".into())
            ]
        );
        let out = keyed.finish(vec![Outcome::failed(Reason::Timeout, "x")], "vendor");
        assert_eq!(out[0].label(), "timeout");
        assert_eq!(out[3].label(), "timeout", "both deliveries of key a");
        assert_eq!(out[2], Outcome::failed(Reason::InvalidItem, "unreadable"));
        assert_eq!(
            out[1],
            Outcome::failed(Reason::ServerError, "vendor: no outcome"),
            "b had no result"
        );
    }
}
