use thiserror::Error;

/// What the CLI reports. Each is one line that names the problem and, where there is one, the
/// way out.
#[derive(Debug, Error)]
pub enum Error {
    #[error("{0}")]
    Usage(String),

    #[error("{path}: {message}")]
    File { path: String, message: String },

    #[error("no hub found: {0}")]
    NoHub(String),

    #[error(
        "cannot reach the hub at {server} (kubeconfig {kubeconfig}): {reason}. Start one with `sail server` or `sail quickstart`, or point --kubeconfig at a cluster"
    )]
    Unreachable {
        server: String,
        kubeconfig: String,
        reason: String,
    },

    #[error("{what}: {source}")]
    Api {
        what: String,
        #[source]
        source: kube::Error,
    },

    #[error("{0}")]
    Controller(#[from] controller::Error),

    #[error("{0}")]
    Render(#[from] render::Error),

    #[error("{0}")]
    Cue(#[from] cue::Error),

    /// Every error of a CUE value, as `cue` lists them (sorted by field path); the CLI prints
    /// one per line. Never empty.
    #[error("{}", first_of_many(.0))]
    CueAll(Vec<cue::Error>),

    #[error("{0}")]
    Oam(#[from] oam::Error),

    #[error("{0}")]
    Fleet(#[from] fleet::Error),

    #[error("hub: {0}")]
    Kubelite(#[from] kubelite::Error),

    #[error("{0}")]
    Failed(String),

    #[error("{what}: {source}")]
    Io {
        what: String,
        #[source]
        source: std::io::Error,
    },
}

/// One line for several errors: the first, and how many more.
fn first_of_many(errs: &[cue::Error]) -> String {
    match errs {
        [] => "no error".to_string(),
        [e] => e.to_string(),
        [e, more] => format!("{e} (and 1 more error: {more})"),
        [e, rest @ ..] => format!("{e} (and {} more errors)", rest.len()),
    }
}

impl Error {
    /// All of `all` when there are any, else `first` (the error that found them).
    pub fn cue_all(first: cue::Error, all: Vec<cue::Error>) -> Error {
        if all.is_empty() {
            Error::Cue(first)
        } else {
            Error::CueAll(all)
        }
    }

    pub fn api(what: impl Into<String>) -> impl FnOnce(kube::Error) -> Error {
        let what = what.into();
        move |source| Error::Api { what, source }
    }

    pub fn io(what: impl Into<String>) -> impl FnOnce(std::io::Error) -> Error {
        let what = what.into();
        move |source| Error::Io { what, source }
    }
}

#[cfg(test)]
mod tests {
    use super::Error;

    /// Where several CUE errors must fit on one line, the first is shown with how many more.
    #[test]
    fn several_cue_errors_on_one_line() {
        let e = |m: &str| cue::Error::new(m).with_path("a");
        assert_eq!(Error::cue_all(e("x"), vec![]).to_string(), "a: x");
        assert_eq!(Error::cue_all(e("x"), vec![e("y")]).to_string(), "a: y");
        assert_eq!(
            Error::cue_all(e("x"), vec![e("y"), e("z")]).to_string(),
            "a: y (and 1 more error: a: z)"
        );
        assert_eq!(
            Error::cue_all(e("x"), vec![e("y"), e("z"), e("w")]).to_string(),
            "a: y (and 2 more errors)"
        );
    }
}
