//! Validation of Applications beyond what the schema says: names, uniqueness, references.

use std::collections::{BTreeMap, BTreeSet};

use crate::application::Application;
use crate::error::{Error, Issue};
use crate::workflow::{StepInput, StepOutput, WorkflowStep, WorkflowSubStep};

/// Whether `s` is a DNS-1123 subdomain: lower-case alphanumerics, `-` and `.`, starting and
/// ending with an alphanumeric, at most 253 characters (the rule for Kubernetes object names).
pub fn is_dns1123_subdomain(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 253
        && s.split('.').all(|label| {
            !label.is_empty()
                && label
                    .bytes()
                    .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
                && !label.starts_with('-')
                && !label.ends_with('-')
        })
}

/// Whether `s` is a DNS-1123 label: like a subdomain without dots, at most 63 characters.
pub fn is_dns1123_label(s: &str) -> bool {
    s.len() <= 63 && !s.contains('.') && is_dns1123_subdomain(s)
}

/// Whether `s` is a valid label value (non-empty here): at most 63 characters, alphanumerics,
/// `-`, `_` and `.`, starting and ending with an alphanumeric. Component names must be one,
/// because they become the value of the `app.oam.dev/component` label.
pub fn is_label_value(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 63
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_' || b == b'.')
        && s.bytes().next().is_some_and(|b| b.is_ascii_alphanumeric())
        && s.bytes().last().is_some_and(|b| b.is_ascii_alphanumeric())
}

/// Whether `s` is a Go duration (`300ms`, `1.5h`, `2h45m`), the format of step timeouts.
pub fn is_duration(s: &str) -> bool {
    let s = s.strip_prefix(['-', '+']).unwrap_or(s);
    if s == "0" {
        return true;
    }
    if s.is_empty() {
        return false;
    }
    let mut rest = s;
    while !rest.is_empty() {
        let num_len = rest
            .find(|c: char| !(c.is_ascii_digit() || c == '.'))
            .unwrap_or(rest.len());
        let num = &rest[..num_len];
        if num.is_empty() || num == "." || num.matches('.').count() > 1 {
            return false;
        }
        rest = &rest[num_len..];
        let unit = ["ns", "us", "µs", "μs", "ms", "s", "m", "h"]
            .into_iter()
            .filter(|u| rest.starts_with(u))
            .max_by_key(|u| u.len());
        match unit {
            Some(u) => rest = &rest[u.len()..],
            None => return false,
        }
    }
    true
}

fn name_issue(field: String, what: &str, name: &str) -> Option<Issue> {
    if name.is_empty() {
        Some(Issue {
            field,
            message: format!("{what} must not be empty"),
        })
    } else if !is_dns1123_subdomain(name) {
        Some(Issue {
            field,
            message: format!(
                "{what} {name:?} is not a valid name: use lower-case letters, digits, '-' and '.', starting and ending with a letter or digit (DNS-1123), at most 253 characters"
            ),
        })
    } else {
        None
    }
}

impl Application {
    /// Checks the rules KubeVela's admission webhook and controller enforce: names present
    /// and DNS-1123, component names unique, types present, `dependsOn` pointing at existing
    /// components / steps without cycles, inputs and outputs complete, timeouts well formed.
    /// Every problem is reported, each with its field path.
    pub fn validate(&self) -> Result<(), Error> {
        let issues = self.validation_issues();
        if issues.is_empty() {
            Ok(())
        } else {
            Err(Error::Invalid {
                kind: "Application".into(),
                name: self.metadata.name.clone().unwrap_or_default(),
                issues,
            })
        }
    }

    /// All validation problems (empty when valid).
    pub fn validation_issues(&self) -> Vec<Issue> {
        let mut issues = Vec::new();
        match self.metadata.name.as_deref() {
            None | Some("") if self.metadata.generate_name.is_some() => {}
            name => issues.extend(name_issue(
                "metadata.name".into(),
                "the application name",
                name.unwrap_or(""),
            )),
        }

        // components
        let mut seen: BTreeMap<&str, usize> = BTreeMap::new();
        for (i, c) in self.spec.components.iter().enumerate() {
            let at = format!("spec.components[{i}]");
            if c.name.is_empty() {
                issues.push(Issue {
                    field: format!("{at}.name"),
                    message: "the component name must not be empty".into(),
                });
            } else if !is_label_value(&c.name) {
                issues.push(Issue {
                    field: format!("{at}.name"),
                    message: format!(
                        "the component name {:?} cannot be a label value: use at most 63 letters, digits, '-', '_' and '.', starting and ending with a letter or digit",
                        c.name
                    ),
                });
            }
            if let Some(first) = seen.insert(c.name.as_str(), i)
                && !c.name.is_empty()
            {
                issues.push(Issue {
                    field: format!("{at}.name"),
                    message: format!(
                        "duplicate component name {:?} (also spec.components[{first}])",
                        c.name
                    ),
                });
            }
            if c.type_.trim().is_empty() {
                issues.push(Issue {
                    field: format!("{at}.type"),
                    message: "the component type (a ComponentDefinition name) must not be empty"
                        .into(),
                });
            }
            if let Some(p) = &c.properties
                && !p.is_object()
                && !p.is_null()
            {
                issues.push(Issue {
                    field: format!("{at}.properties"),
                    message: "properties must be a map".into(),
                });
            }
            for (t, tr) in c.traits.iter().enumerate() {
                if tr.type_.trim().is_empty() {
                    issues.push(Issue {
                        field: format!("{at}.traits[{t}].type"),
                        message: "the trait type (a TraitDefinition name) must not be empty".into(),
                    });
                }
                if let Some(p) = &tr.properties
                    && !p.is_object()
                    && !p.is_null()
                {
                    issues.push(Issue {
                        field: format!("{at}.traits[{t}].properties"),
                        message: "properties must be a map".into(),
                    });
                }
            }
            check_io(&at, &c.inputs, &c.outputs, &mut issues);
        }
        let names: BTreeSet<&str> = self
            .spec
            .components
            .iter()
            .map(|c| c.name.as_str())
            .collect();
        for (i, c) in self.spec.components.iter().enumerate() {
            for (d, dep) in c.depends_on.iter().enumerate() {
                let field = format!("spec.components[{i}].dependsOn[{d}]");
                if dep == &c.name {
                    issues.push(Issue {
                        field,
                        message: format!("component {:?} depends on itself", c.name),
                    });
                } else if !names.contains(dep.as_str()) {
                    issues.push(Issue {
                        field,
                        message: format!(
                            "no component named {dep:?} (components: {})",
                            names.iter().copied().collect::<Vec<_>>().join(", ")
                        ),
                    });
                }
            }
        }
        let graph: Vec<(&str, Vec<&str>)> = self
            .spec
            .components
            .iter()
            .map(|c| {
                (
                    c.name.as_str(),
                    c.depends_on.iter().map(String::as_str).collect(),
                )
            })
            .collect();
        if let Some(cycle) = find_cycle(&graph) {
            issues.push(Issue {
                field: "spec.components".into(),
                message: format!("dependsOn forms a cycle: {}", cycle.join(" -> ")),
            });
        }

        // policies
        let mut policy_names: BTreeMap<&str, usize> = BTreeMap::new();
        for (i, p) in self.spec.policies.iter().enumerate() {
            let at = format!("spec.policies[{i}]");
            if p.type_.trim().is_empty() {
                issues.push(Issue {
                    field: format!("{at}.type"),
                    message: "the policy type (a PolicyDefinition name) must not be empty".into(),
                });
            }
            if !p.name.is_empty()
                && let Some(first) = policy_names.insert(p.name.as_str(), i)
            {
                issues.push(Issue {
                    field: format!("{at}.name"),
                    message: format!(
                        "duplicate policy name {:?} (also spec.policies[{first}])",
                        p.name
                    ),
                });
            }
        }

        // workflow
        if let Some(wf) = &self.spec.workflow {
            check_steps("spec.workflow.steps", &wf.steps, &mut issues);
        }
        issues
    }
}

impl crate::Workflow {
    /// Checks the steps of a `Workflow` object as [`Application::validate`] checks inline ones.
    pub fn validate(&self) -> Result<(), Error> {
        let mut issues = Vec::new();
        check_steps("steps", &self.spec.steps, &mut issues);
        if issues.is_empty() {
            Ok(())
        } else {
            Err(Error::Invalid {
                kind: "Workflow".into(),
                name: self.metadata.name.clone().unwrap_or_default(),
                issues,
            })
        }
    }
}

/// Checks a definition of any kind: a DNS-1123 name and a non-empty CUE template (Sailplane
/// renders only CUE; Terraform schematics are kept but not run).
pub fn validate_definition<D: crate::Definition>(def: &D) -> Result<(), Error> {
    let mut issues = Vec::new();
    issues.extend(name_issue(
        "metadata.name".into(),
        "the definition name",
        def.definition_name(),
    ));
    match def.schematic() {
        None => issues.push(Issue {
            field: "spec.schematic".into(),
            message: "a definition needs a schematic (spec.schematic.cue.template)".into(),
        }),
        Some(s) => match &s.cue {
            Some(cue) if cue.template.trim().is_empty() => issues.push(Issue {
                field: "spec.schematic.cue.template".into(),
                message: "the CUE template is empty".into(),
            }),
            Some(_) => {}
            None if s.terraform.is_some() => issues.push(Issue {
                field: "spec.schematic.terraform".into(),
                message: "Terraform schematics are not supported; write the definition in CUE"
                    .into(),
            }),
            None => issues.push(Issue {
                field: "spec.schematic.cue".into(),
                message: "a definition needs a CUE template (spec.schematic.cue.template)".into(),
            }),
        },
    }
    if issues.is_empty() {
        Ok(())
    } else {
        Err(Error::Invalid {
            kind: D::definition_kind().kind_name().into(),
            name: def.definition_name().into(),
            issues,
        })
    }
}

/// Validates workflow steps (also used for `Workflow` objects).
pub(crate) fn check_steps(at: &str, steps: &[WorkflowStep], issues: &mut Vec<Issue>) {
    let mut all: Vec<(&str, String)> = Vec::new();
    for (i, s) in steps.iter().enumerate() {
        all.push((s.name.as_str(), format!("{at}[{i}].name")));
        for (j, sub) in s.sub_steps.iter().enumerate() {
            all.push((sub.name.as_str(), format!("{at}[{i}].subSteps[{j}].name")));
        }
    }
    let mut seen: BTreeMap<&str, String> = BTreeMap::new();
    for (name, field) in all {
        if name.is_empty() {
            continue;
        }
        match seen.get(name) {
            Some(first) => issues.push(Issue {
                field,
                message: format!("duplicate step name {name:?} (also {first})"),
            }),
            None => {
                seen.insert(name, field);
            }
        }
    }
    let top: BTreeSet<&str> = steps.iter().map(|s| s.name.as_str()).collect();
    for (i, s) in steps.iter().enumerate() {
        let f = format!("{at}[{i}]");
        check_step_common(
            &f,
            &s.name,
            &s.type_,
            s.timeout.as_deref(),
            &s.depends_on,
            &top,
            issues,
        );
        check_io(&f, &s.inputs, &s.outputs, issues);
        if !s.sub_steps.is_empty() && s.type_ != "step-group" {
            issues.push(Issue {
                field: format!("{f}.subSteps"),
                message: format!(
                    "only steps of type \"step-group\" have subSteps (this step is {:?})",
                    s.type_
                ),
            });
        }
        let siblings: BTreeSet<&str> = s.sub_steps.iter().map(|x| x.name.as_str()).collect();
        for (j, sub) in s.sub_steps.iter().enumerate() {
            check_sub_step(&format!("{f}.subSteps[{j}]"), sub, &siblings, issues);
        }
    }
    let graph: Vec<(&str, Vec<&str>)> = steps
        .iter()
        .filter(|s| !s.name.is_empty())
        .map(|s| {
            (
                s.name.as_str(),
                s.depends_on.iter().map(String::as_str).collect(),
            )
        })
        .collect();
    if let Some(cycle) = find_cycle(&graph) {
        issues.push(Issue {
            field: at.to_string(),
            message: format!("dependsOn forms a cycle: {}", cycle.join(" -> ")),
        });
    }
}

fn check_sub_step(
    f: &str,
    s: &WorkflowSubStep,
    siblings: &BTreeSet<&str>,
    issues: &mut Vec<Issue>,
) {
    check_step_common(
        f,
        &s.name,
        &s.type_,
        s.timeout.as_deref(),
        &s.depends_on,
        siblings,
        issues,
    );
    check_io(f, &s.inputs, &s.outputs, issues);
    if s.type_ == "step-group" {
        issues.push(Issue {
            field: format!("{f}.type"),
            message: "a step group cannot be nested in another step group".into(),
        });
    }
}

fn check_step_common(
    f: &str,
    name: &str,
    type_: &str,
    timeout: Option<&str>,
    depends_on: &[String],
    names: &BTreeSet<&str>,
    issues: &mut Vec<Issue>,
) {
    if type_.trim().is_empty() {
        issues.push(Issue {
            field: format!("{f}.type"),
            message: "the step type (a WorkflowStepDefinition name) must not be empty".into(),
        });
    }
    if let Some(t) = timeout
        && !is_duration(t)
    {
        issues.push(Issue {
            field: format!("{f}.timeout"),
            message: format!("{t:?} is not a duration (examples: 30s, 5m, 1h30m)"),
        });
    }
    for (d, dep) in depends_on.iter().enumerate() {
        let field = format!("{f}.dependsOn[{d}]");
        if dep == name {
            issues.push(Issue {
                field,
                message: format!("step {name:?} depends on itself"),
            });
        } else if !names.contains(dep.as_str()) {
            issues.push(Issue {
                field,
                message: format!("no step named {dep:?} at this level"),
            });
        }
    }
}

fn check_io(at: &str, inputs: &[StepInput], outputs: &[StepOutput], issues: &mut Vec<Issue>) {
    for (i, input) in inputs.iter().enumerate() {
        if input.from.trim().is_empty() {
            issues.push(Issue {
                field: format!("{at}.inputs[{i}].from"),
                message: "an input needs `from`: the name of an output".into(),
            });
        }
    }
    let mut seen = BTreeSet::new();
    for (i, output) in outputs.iter().enumerate() {
        if output.name.trim().is_empty() {
            issues.push(Issue {
                field: format!("{at}.outputs[{i}].name"),
                message: "an output needs a name".into(),
            });
        } else if !seen.insert(output.name.as_str()) {
            issues.push(Issue {
                field: format!("{at}.outputs[{i}].name"),
                message: format!("duplicate output name {:?}", output.name),
            });
        }
        if output.value_from.trim().is_empty() {
            issues.push(Issue {
                field: format!("{at}.outputs[{i}].valueFrom"),
                message: "an output needs `valueFrom`".into(),
            });
        }
    }
}

/// A dependency cycle among named nodes, as the list of names around it.
fn find_cycle<'a>(graph: &[(&'a str, Vec<&'a str>)]) -> Option<Vec<&'a str>> {
    let edges: BTreeMap<&str, &Vec<&str>> = graph.iter().map(|(n, d)| (*n, d)).collect();
    // 0 = unvisited, 1 = on stack, 2 = done
    let mut state: BTreeMap<&str, u8> = BTreeMap::new();
    fn visit<'a>(
        n: &'a str,
        edges: &BTreeMap<&'a str, &Vec<&'a str>>,
        state: &mut BTreeMap<&'a str, u8>,
        stack: &mut Vec<&'a str>,
    ) -> Option<Vec<&'a str>> {
        state.insert(n, 1);
        stack.push(n);
        if let Some(deps) = edges.get(n) {
            for d in deps.iter() {
                if *d == n || !edges.contains_key(d) {
                    continue; // self-dependency and unknown names are reported elsewhere
                }
                match state.get(d).copied().unwrap_or(0) {
                    1 => {
                        let start = stack.iter().position(|x| x == d).unwrap_or(0);
                        let mut cycle: Vec<&str> = stack[start..].to_vec();
                        cycle.push(d);
                        return Some(cycle);
                    }
                    0 => {
                        if let Some(c) = visit(d, edges, state, stack) {
                            return Some(c);
                        }
                    }
                    _ => {}
                }
            }
        }
        stack.pop();
        state.insert(n, 2);
        None
    }
    for (n, _) in graph {
        if state.get(n).copied().unwrap_or(0) == 0 {
            let mut stack = Vec::new();
            if let Some(c) = visit(n, &edges, &mut state, &mut stack) {
                return Some(c);
            }
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names() {
        assert!(is_dns1123_subdomain("my-app.v1"));
        assert!(!is_dns1123_subdomain("My-App"));
        assert!(!is_dns1123_subdomain("-a"));
        assert!(!is_dns1123_subdomain("a..b"));
        assert!(is_dns1123_label("frontend"));
        assert!(!is_dns1123_label("a.b"));
        assert!(is_label_value("example.Deployment.example"));
        assert!(!is_label_value("a/b"));
        assert!(!is_label_value("-a"));
    }

    #[test]
    fn durations() {
        for ok in ["30s", "5m", "1h30m", "1.5h", "300ms", "0"] {
            assert!(is_duration(ok), "{ok}");
        }
        for bad in ["", "5", "m", "5 m", "1d", "abc"] {
            assert!(!is_duration(bad), "{bad}");
        }
    }

    #[test]
    fn cycles() {
        let g = vec![("a", vec!["b"]), ("b", vec!["c"]), ("c", vec!["a"])];
        assert_eq!(find_cycle(&g), Some(vec!["a", "b", "c", "a"]));
        let g = vec![("a", vec!["b"]), ("b", vec![])];
        assert_eq!(find_cycle(&g), None);
    }
}
