//! The `--format` of `b2d inspect`: Go-template-like text over a JSON
//! document. `{{.Field.Sub}}` prints a value (a string as it is, a list
//! or an object as JSON, null as `<no value>`), `{{json .Field}}` prints
//! it as JSON, `{{.}}` is the whole document. Field names match the JSON
//! keys ignoring case and `_`, so `{{.DockerHost}}` and `{{.docker_host}}`
//! are the same.

use serde_json::Value;

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum TemplateError {
    #[error("--format: \"{{{{\" at byte {0} is never closed with \"}}}}\"")]
    Unclosed(usize),
    #[error("--format: {{{{{action}}}}}: {why}")]
    Action { action: String, why: String },
}

fn norm(k: &str) -> String {
    k.chars()
        .filter(|c| *c != '_' && *c != '-')
        .flat_map(char::to_lowercase)
        .collect()
}

/// The value at `.A.B` in `doc`.
fn lookup<'a>(doc: &'a Value, path: &str, action: &str) -> Result<&'a Value, TemplateError> {
    let bad = |why: String| TemplateError::Action {
        action: action.into(),
        why,
    };
    let Some(rest) = path.strip_prefix('.') else {
        return Err(bad(format!(
            "\"{path}\" is not a field: fields start with a dot, e.g. {{{{.Name}}}}"
        )));
    };
    let mut v = doc;
    for part in rest.split('.').filter(|p| !p.is_empty()) {
        let Value::Object(o) = v else {
            return Err(bad(format!(
                "there is no field {part} in a value that is not an object"
            )));
        };
        v = match o.iter().find(|(k, _)| norm(k) == norm(part)) {
            Some((_, v)) => v,
            None => {
                let keys: Vec<&str> = o.keys().map(String::as_str).collect();
                return Err(bad(format!(
                    "no field {part} (there are: {})",
                    keys.join(", ")
                )));
            }
        };
    }
    Ok(v)
}

fn plain(v: &Value) -> String {
    match v {
        Value::Null => "<no value>".into(),
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

/// `template` rendered over `doc`.
pub fn render(template: &str, doc: &Value) -> Result<String, TemplateError> {
    let mut out = String::new();
    let mut rest = template;
    let mut at = 0;
    while let Some(open) = rest.find("{{") {
        out += &rest[..open];
        let after = &rest[open + 2..];
        let close = after.find("}}").ok_or(TemplateError::Unclosed(at + open))?;
        let action = after[..close].trim();
        let words: Vec<&str> = action.split_whitespace().collect();
        out += &match words[..] {
            [path] if path.starts_with('.') => plain(lookup(doc, path, action)?),
            ["json", path] => lookup(doc, path, action)?.to_string(),
            _ => {
                return Err(TemplateError::Action {
                    action: action.into(),
                    why: "b2d's --format knows {{.Field}} and {{json .Field}}".into(),
                })
            }
        };
        let consumed = open + 2 + close + 2;
        at += consumed;
        rest = &rest[consumed..];
    }
    out += rest;
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn doc() -> Value {
        json!({"name": "dev", "docker_host": "tcp://127.0.0.1:1", "cpus": 2,
               "engine": {"labels": ["a=b"], "daemon_json": null}})
    }

    #[test]
    fn fields_and_json() {
        let d = doc();
        assert_eq!(
            render("{{.Name}} {{.DockerHost}}", &d).unwrap(),
            "dev tcp://127.0.0.1:1"
        );
        assert_eq!(
            render("{{ .docker_host }}", &d).unwrap(),
            "tcp://127.0.0.1:1"
        );
        assert_eq!(render("cpus={{.Cpus}}", &d).unwrap(), "cpus=2");
        assert_eq!(render("{{.Engine.Labels}}", &d).unwrap(), "[\"a=b\"]");
        assert_eq!(render("{{json .Name}}", &d).unwrap(), "\"dev\"");
        assert_eq!(render("{{.Engine.DaemonJson}}", &d).unwrap(), "<no value>");
        assert_eq!(render("{{json .}}", &d).unwrap(), d.to_string());
        assert_eq!(render("no actions", &d).unwrap(), "no actions");
    }

    #[test]
    fn mistakes_are_named() {
        let d = doc();
        let e = render("{{.Nme}}", &d).unwrap_err().to_string();
        assert_eq!(
            e,
            "--format: {{.Nme}}: no field Nme (there are: cpus, docker_host, engine, name)"
        );
        let e = render("{{.Name.X}}", &d).unwrap_err().to_string();
        assert!(e.contains("not an object"), "{e}");
        let e = render("{{range .X}}", &d).unwrap_err().to_string();
        assert!(e.contains("knows {{.Field}} and {{json .Field}}"), "{e}");
        let e = render("x {{.Name", &d).unwrap_err().to_string();
        assert_eq!(e, "--format: \"{{\" at byte 2 is never closed with \"}}\"");
        let e = render("{{Name}}", &d).unwrap_err().to_string();
        assert!(e.contains("knows"), "{e}");
    }
}
