//! `sail cue export | eval | vet`: the CUE engine on files, like the `cue` command for what the
//! two share: results on stdout, errors on stderr, exit 1 on error.

use crate::Error;
use std::path::PathBuf;

#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum Out {
    Json,
    Yaml,
}

fn load(files: &[PathBuf]) -> Result<cue::Value, Error> {
    let [file] = files else {
        return Err(Error::Usage(format!(
            "give exactly one .cue file ({} given); several files of one package are not supported yet",
            files.len()
        )));
    };
    let src = std::fs::read_to_string(file).map_err(|e| Error::File {
        path: file.display().to_string(),
        message: format!("cannot read: {e}"),
    })?;
    let runtime = cue::Runtime::new();
    let program = runtime.compile(&file.display().to_string(), &src)?;
    Ok(program.eval()?)
}

fn select(value: &cue::Value, expr: Option<&str>) -> Result<cue::Value, Error> {
    match expr {
        None => Ok(value.clone()),
        Some(e) => value
            .lookup(e)
            .ok_or_else(|| Error::Failed(format!("reference {e:?} not found"))),
    }
}

/// `sail cue export`: the whole file must be free of errors; the selected value must be concrete.
pub fn export(files: &[PathBuf], expr: Option<&str>, out: Out) -> Result<(), Error> {
    let value = load(files)?;
    value.validate()?;
    let selected = select(&value, expr)?;
    if let Out::Json = out {
        // Straight from the value to text, without an intermediate JSON tree.
        println!("{}", selected.to_json_string(true)?);
        return Ok(());
    }
    print_json(&selected.to_json()?, out)
}

/// `sail cue eval`: like export, but incomplete values are shown as far as they are known.
pub fn eval(files: &[PathBuf], expr: Option<&str>, out: Out) -> Result<(), Error> {
    let value = load(files)?;
    value.validate()?;
    let v = select(&value, expr)?;
    match v.to_json() {
        Ok(json) => print_json(&json, out),
        Err(e) => Err(e.into()),
    }
}

/// `sail cue vet`: no errors anywhere.
pub fn vet(files: &[PathBuf]) -> Result<(), Error> {
    load(files)?.validate()?;
    Ok(())
}

fn print_json(json: &serde_json::Value, out: Out) -> Result<(), Error> {
    match out {
        Out::Json => {
            let text =
                serde_json::to_string_pretty(json).map_err(|e| Error::Failed(e.to_string()))?;
            println!("{text}");
        }
        Out::Yaml => {
            let text = serde_saphyr::to_string(json).map_err(|e| Error::Failed(e.to_string()))?;
            print!("{text}");
        }
    }
    Ok(())
}
