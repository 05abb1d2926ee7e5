use thiserror::Error;

#[derive(Debug, Error)]
pub enum Error {
    #[error("{0}")]
    Fleet(#[from] fleet::Error),

    #[error("{0}")]
    Render(#[from] render::Error),

    #[error("hub: {verb} {what}: {source}")]
    Hub {
        verb: &'static str,
        what: String,
        #[source]
        source: kube::Error,
    },

    #[error("{0}")]
    Invalid(String),
}

impl Error {
    pub(crate) fn hub(
        verb: &'static str,
        what: impl Into<String>,
    ) -> impl FnOnce(kube::Error) -> Error {
        let what = what.into();
        move |source| Error::Hub { verb, what, source }
    }
}
