use thiserror::Error;

/// Everything that can go wrong while rendering. Messages name the component, trait or
/// definition and, through the CUE error, the file, line and field.
#[derive(Debug, Error)]
pub enum Error {
    #[error("{file}: {message}")]
    DefinitionFile { file: String, message: String },

    #[error("definition {kind} {name:?}: {source}")]
    Compile {
        kind: &'static str,
        name: String,
        #[source]
        source: Box<cue::Error>,
    },

    #[error("{what} {name:?} is not defined{hint}")]
    UnknownDefinition {
        what: &'static str,
        name: String,
        hint: String,
    },

    #[error("component {component:?} ({definition}): {source}")]
    Component {
        component: String,
        definition: String,
        #[source]
        source: Box<cue::Error>,
    },

    #[error("component {component:?}, trait {trait_type:?}: {source}")]
    Trait {
        component: String,
        trait_type: String,
        #[source]
        source: Box<cue::Error>,
    },

    #[error("component {component:?}: {message}")]
    Invalid { component: String, message: String },

    #[error("component {component:?}, trait {trait_type:?}: patch {path}: {message}")]
    Patch {
        component: String,
        trait_type: String,
        path: String,
        message: String,
    },

    #[error("policy {policy:?}: {message}")]
    Policy { policy: String, message: String },

    #[error("health of component {component:?}: {source}")]
    Health {
        component: String,
        #[source]
        source: Box<cue::Error>,
    },
}

/// Suggest the closest known names for a misspelt one: ` (did you mean "webservice"?)`, or a
/// list of what exists when nothing is close.
pub(crate) fn suggest<'a>(name: &str, known: impl Iterator<Item = &'a str>) -> String {
    let mut scored: Vec<(usize, &str)> = known.map(|k| (edit_distance(name, k), k)).collect();
    scored.sort();
    let close: Vec<&str> = scored
        .iter()
        .filter(|(d, k)| *d <= 2.max(k.len() / 3))
        .map(|(_, k)| *k)
        .take(3)
        .collect();
    if !close.is_empty() {
        let list: Vec<String> = close.iter().map(|k| format!("{k:?}")).collect();
        format!(" (did you mean {}?)", list.join(" or "))
    } else if scored.is_empty() {
        String::new()
    } else {
        let list: Vec<&str> = scored.iter().map(|(_, k)| *k).collect::<Vec<_>>();
        let mut sorted = list.clone();
        sorted.sort();
        format!(" (known: {})", sorted.join(", "))
    }
}

fn edit_distance(a: &str, b: &str) -> usize {
    let a: Vec<char> = a.chars().collect();
    let b: Vec<char> = b.chars().collect();
    let mut prev: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.iter().enumerate() {
        let mut cur = vec![i + 1; b.len() + 1];
        for (j, cb) in b.iter().enumerate() {
            let cost = usize::from(ca != cb);
            cur[j + 1] = (prev[j] + cost).min(prev[j + 1] + 1).min(cur[j] + 1);
        }
        prev = cur;
    }
    prev[b.len()]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn suggests_close_names() {
        let known = ["webservice", "worker", "task"];
        assert_eq!(
            suggest("webservce", known.iter().copied()),
            " (did you mean \"webservice\"?)"
        );
        assert_eq!(
            suggest("zzzzzzzzzzzz", known.iter().copied()),
            " (known: task, webservice, worker)"
        );
        assert_eq!(suggest("x", std::iter::empty()), "");
    }
}
