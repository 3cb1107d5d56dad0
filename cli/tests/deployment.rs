//! The deployment files under `deploy/` against each other and against the real binary.
//!
//! Every Kubernetes manifest under `deploy/k8s` is parsed (all documents of every file) and the
//! references between them are checked: Service selectors and ports against pod templates,
//! volume mounts against volumes, Secret and PVC names against the objects defined, the
//! StatefulSet's headless Service, the Indexed Job's counts and retry settings, the addresses and
//! paths passed to `glint-lda` (data that must outlive a pod on a PersistentVolumeClaim, a claim
//! mounted by several pods at once ReadWriteMany), TLS on every role or none, a retried driver
//! resuming its run, and every `glint-lda <role> --flag` (also inside a container's `sh -c`
//! script, and commented-out ones) against `glint-lda <role> --help` of the binary built here,
//! so that the manifests cannot drift from the CLI. The Slurm script is checked with `bash -n`
//! and its `glint-lda` flags the same way. The checker is a plain function; the unit tests at the
//! end break a small valid fixture one reference at a time and require each break to be
//! reported.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::cell::RefCell;
use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::path::{Path, PathBuf};
use std::process::Command;

use yaml_rust2::{Yaml, YamlLoader};

const BIN: &str = env!("CARGO_BIN_EXE_glint-lda");
/// The cluster roles; a manifest or the Slurm script runs nothing else.
const ROLES: [&str; 4] = ["master", "server", "worker", "train"];
const NAME_LABEL: &str = "app.kubernetes.io/name";
const COMPONENT_LABEL: &str = "app.kubernetes.io/component";
/// Flags whose value is a path in the container: whether the role writes there, and whether what
/// it writes must outlive the pod (a checkpoint, a snapshot, a registry, a model).
const PATH_FLAGS: [(&str, bool, bool); 13] = [
    ("--token-file", false, false),
    ("--tls-cert", false, false),
    ("--tls-key", false, false),
    ("--tls-ca", false, false),
    ("--tls-client-ca", false, false),
    ("--tls-client-cert", false, false),
    ("--tls-client-key", false, false),
    ("--config", false, false),
    ("--corpus", false, false),
    ("--test", false, false),
    ("--out", true, true),
    ("--data-dir", true, true),
    ("--state-dir", true, true),
];

/// `glint-lda <role> --help`, or why it failed.
type Help<'a> = &'a dyn Fn(&str) -> Result<String, String>;

// ---------------------------------------------------------------------------------------------
// YAML helpers

/// A scalar as text (ports and counts are integers, args may be quoted numbers).
fn text(y: &Yaml) -> Option<String> {
    match y {
        Yaml::String(s) | Yaml::Real(s) => Some(s.clone()),
        Yaml::Integer(i) => Some(i.to_string()),
        Yaml::Boolean(b) => Some(b.to_string()),
        _ => None,
    }
}

fn items(y: &Yaml) -> &[Yaml] {
    y.as_vec().map(Vec::as_slice).unwrap_or(&[])
}

fn string_map(y: &Yaml) -> BTreeMap<String, String> {
    let mut out = BTreeMap::new();
    if let Some(hash) = y.as_hash() {
        for (k, v) in hash {
            if let (Some(k), Some(v)) = (text(k), text(v)) {
                out.insert(k, v);
            }
        }
    }
    out
}

fn keys(y: &Yaml) -> BTreeSet<String> {
    y.as_hash()
        .map(|h| h.keys().filter_map(text).collect())
        .unwrap_or_default()
}

fn strings(y: &Yaml) -> Vec<String> {
    items(y).iter().filter_map(text).collect()
}

// ---------------------------------------------------------------------------------------------
// The model the checks run on

struct Object {
    /// `file: Kind name`, the prefix of every message about this object.
    origin: String,
    kind: String,
    name: String,
    namespace: String,
    doc: Yaml,
}

struct Mount {
    volume: String,
    path: String,
    read_only: bool,
}

enum Source {
    /// A Secret volume; `whole` when it projects every key as a file (no `items`).
    Secret {
        name: String,
        whole: bool,
    },
    Claim {
        name: String,
        read_only: bool,
    },
    Other,
}

struct Container {
    origin: String,
    name: String,
    image: String,
    command: Option<Vec<String>>,
    args: Vec<String>,
    /// (name, containerPort).
    ports: Vec<(Option<String>, i64)>,
    mounts: Vec<Mount>,
    /// Names of the environment variables the container defines.
    env: BTreeSet<String>,
    doc: Yaml,
}

/// A pod template: of a Deployment, StatefulSet, Job, ..., or a bare Pod.
struct Template {
    origin: String,
    kind: String,
    namespace: String,
    labels: BTreeMap<String, String>,
    containers: Vec<Container>,
    volumes: BTreeMap<String, Source>,
    claim_templates: BTreeSet<String>,
    /// The workload's `spec` (the Pod's own for a Pod).
    spec: Yaml,
    /// The pod's `spec`.
    pod: Yaml,
}

impl Template {
    fn declares_port(&self, port: i64) -> bool {
        self.containers
            .iter()
            .any(|c| c.ports.iter().any(|(_, p)| *p == port))
    }

    /// The container port a Service port with this targetPort reaches in this template.
    fn target(&self, target: &Yaml, port: i64) -> Option<i64> {
        match target {
            Yaml::String(name) => self
                .containers
                .iter()
                .flat_map(|c| &c.ports)
                .find(|(n, _)| n.as_deref() == Some(name))
                .map(|(_, p)| *p),
            Yaml::Integer(n) => self.declares_port(*n).then_some(*n),
            _ => self.declares_port(port).then_some(port),
        }
    }
}

struct Service {
    origin: String,
    name: String,
    namespace: String,
    headless: bool,
    selector: BTreeMap<String, String>,
    /// (port, targetPort as written).
    ports: Vec<(i64, Yaml)>,
}

impl Service {
    fn selects(&self, t: &Template) -> bool {
        self.namespace == t.namespace
            && !self.selector.is_empty()
            && self
                .selector
                .iter()
                .all(|(k, v)| t.labels.get(k) == Some(v))
    }

    fn has_port(&self, port: i64) -> bool {
        self.ports.iter().any(|(p, _)| *p == port)
    }
}

/// One `glint-lda <role> ...` in a manifest, for the checks across manifests.
struct Invocation {
    origin: String,
    role: String,
    flags: Vec<(String, Option<String>)>,
    /// The completions of the Indexed Job it runs in.
    indexed_completions: Option<i64>,
    /// Pods of its workload (replicas of a Deployment or StatefulSet, completions of a Job).
    pods: i64,
    /// Why its pods are started again after a failure, if they are.
    retried: Option<String>,
}

impl Invocation {
    fn flag(&self, name: &str) -> Option<&str> {
        self.flags
            .iter()
            .find(|(f, _)| f == name)
            .and_then(|(_, v)| v.as_deref())
    }
}

/// A pod template mounting a PersistentVolumeClaim: its origin, its pods at once, and whether
/// they only read the claim.
type ClaimUser = (String, i64, bool);

/// `--flag value` and `--flag=value` pairs of an argument list.
fn parse_flags(args: &[String]) -> Vec<(String, Option<String>)> {
    let mut out = Vec::new();
    let mut i = 0;
    while i < args.len() {
        let arg = &args[i];
        if arg.starts_with("--") {
            if let Some((flag, value)) = arg.split_once('=') {
                out.push((flag.to_string(), Some(value.to_string())));
            } else if let Some(next) = args.get(i + 1).filter(|n| !n.starts_with("--")) {
                out.push((arg.clone(), Some(next.clone())));
                i += 1;
            } else {
                out.push((arg.clone(), None));
            }
        }
        i += 1;
    }
    out
}

/// The `--long-option` words of a text, at the start or after whitespace, a quote, `+` or `[`
/// (clap's help, or a shell line with `${X:+--flag}`).
fn long_options(text: &str) -> Vec<String> {
    let bytes = text.as_bytes();
    let mut out = Vec::new();
    let mut i = 0;
    while let Some(pos) = text[i..].find("--") {
        let start = i + pos;
        let boundary = start == 0
            || matches!(
                bytes[start - 1],
                b' ' | b'\t' | b'\n' | b'"' | b'\'' | b'+' | b'['
            );
        let mut end = start + 2;
        while end < bytes.len()
            && (bytes[end].is_ascii_lowercase()
                || bytes[end].is_ascii_digit()
                || bytes[end] == b'-')
        {
            end += 1;
        }
        if boundary && end > start + 2 && bytes[start + 2].is_ascii_lowercase() {
            out.push(text[start..end].to_string());
        }
        i = end;
    }
    out
}

/// HOST and PORT of `HOST:PORT`.
fn split_addr(value: &str) -> Option<(&str, i64)> {
    let (host, port) = value.rsplit_once(':')?;
    Some((host, port.parse().ok()?))
}

/// Is `path` at or below the directory `dir`?
fn under(path: &str, dir: &str) -> Option<String> {
    let dir = dir.trim_end_matches('/');
    let rest = path.strip_prefix(dir)?;
    if rest.is_empty() {
        Some(String::new())
    } else {
        rest.strip_prefix('/').map(str::to_string)
    }
}

/// `$(VAR)` references of a Kubernetes argument.
fn env_refs(arg: &str) -> Vec<&str> {
    let mut out = Vec::new();
    let mut rest = arg;
    while let Some(start) = rest.find("$(") {
        let Some(len) = rest[start + 2..].find(')') else {
            break;
        };
        out.push(&rest[start + 2..start + 2 + len]);
        rest = &rest[start + 2 + len..];
    }
    out
}

fn is_glint_image(image: &str) -> bool {
    let last = image.rsplit('/').next().unwrap_or(image);
    let name = last.split(['@', ':']).next().unwrap_or(last);
    name == "glint-lda"
}

fn is_glint_program(word: &str) -> bool {
    let word = word.trim_matches(|c| c == '"' || c == '\'');
    word == "$GLINT" || word == "${GLINT}" || word.rsplit('/').next() == Some("glint-lda")
}

// ---------------------------------------------------------------------------------------------
// A small reader of shell scripts, for a container's `sh -c` script

/// The simple commands of a script, each as its words with the quotes removed; `$VAR`, `$(...)`
/// and `${...}` stay as written, comments and redirections (with their targets) are dropped.
/// Enough for the scripts of these manifests, not a shell.
fn shell_commands(script: &str) -> Vec<Vec<String>> {
    /// Appends `$(...)` or `${...}` starting at `chars[i]` (the `$`) to `word`; returns the index
    /// after it.
    fn nested(chars: &[char], i: usize, word: &mut String) -> usize {
        let (open, close) = if chars[i + 1] == '(' {
            ('(', ')')
        } else {
            ('{', '}')
        };
        word.push('$');
        word.push(open);
        let mut depth = 1;
        let mut j = i + 2;
        while j < chars.len() && depth > 0 {
            if chars[j] == open {
                depth += 1;
            } else if chars[j] == close {
                depth -= 1;
            }
            word.push(chars[j]);
            j += 1;
        }
        j
    }
    struct Reader {
        commands: Vec<Vec<String>>,
        words: Vec<String>,
        word: Option<String>,
        /// The next word is a redirection's target.
        target: bool,
    }
    impl Reader {
        fn end_word(&mut self) {
            if let Some(w) = self.word.take() {
                if self.target {
                    self.target = false;
                } else {
                    self.words.push(w);
                }
            }
        }
        fn end_command(&mut self) {
            self.end_word();
            if !self.words.is_empty() {
                self.commands.push(std::mem::take(&mut self.words));
            }
        }
        fn word(&mut self) -> &mut String {
            self.word.get_or_insert_with(String::new)
        }
    }
    let chars: Vec<char> = script.chars().collect();
    let n = chars.len();
    let mut r = Reader {
        commands: Vec::new(),
        words: Vec::new(),
        word: None,
        target: false,
    };
    let mut i = 0;
    while i < n {
        let c = chars[i];
        match c {
            '\\' => {
                if let Some(&next) = chars.get(i + 1)
                    && next != '\n'
                {
                    r.word().push(next);
                }
                i += 2;
            }
            '\'' => {
                i += 1;
                while i < n && chars[i] != '\'' {
                    let ch = chars[i];
                    r.word().push(ch);
                    i += 1;
                }
                r.word();
                i += 1;
            }
            '"' => {
                i += 1;
                r.word();
                while i < n && chars[i] != '"' {
                    if chars[i] == '\\'
                        && i + 1 < n
                        && matches!(chars[i + 1], '"' | '\\' | '$' | '`' | '\n')
                    {
                        if chars[i + 1] != '\n' {
                            let ch = chars[i + 1];
                            r.word().push(ch);
                        }
                        i += 2;
                    } else if chars[i] == '$' && matches!(chars.get(i + 1), Some('(' | '{')) {
                        let mut w = std::mem::take(r.word());
                        i = nested(&chars, i, &mut w);
                        r.word = Some(w);
                    } else {
                        let ch = chars[i];
                        r.word().push(ch);
                        i += 1;
                    }
                }
                i += 1;
            }
            '$' if matches!(chars.get(i + 1), Some('(' | '{')) => {
                let mut w = r.word.take().unwrap_or_default();
                i = nested(&chars, i, &mut w);
                r.word = Some(w);
            }
            '#' if r.word.is_none() => {
                while i < n && chars[i] != '\n' {
                    i += 1;
                }
            }
            ' ' | '\t' => {
                r.end_word();
                i += 1;
            }
            '\n' | ';' | '&' | '|' | '(' | ')' => {
                r.end_command();
                i += 1;
            }
            '>' | '<' => {
                // `2>`: the digits name a descriptor, not a word.
                if r.word
                    .as_deref()
                    .is_some_and(|w| w.chars().all(|d| d.is_ascii_digit()))
                {
                    r.word = None;
                } else {
                    r.end_word();
                }
                i += 1;
                while i < n && matches!(chars[i], '>' | '&') {
                    i += 1;
                }
                r.target = true;
            }
            _ => {
                r.word().push(c);
                i += 1;
            }
        }
    }
    r.end_command();
    r.commands
}

/// The words `${NAME:+WORDS}` (or `${NAME+WORDS}`) expands to when NAME is set.
fn conditional_words(word: &str) -> Option<Vec<String>> {
    let inner = word.strip_prefix("${")?.strip_suffix('}')?;
    let at = inner.find('+')?;
    let name = inner[..at].strip_suffix(':').unwrap_or(&inner[..at]);
    let valid = !name.is_empty() && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_');
    valid.then(|| shell_commands(&inner[at + 1..]).concat())
}

/// Words before a command's program: keywords, `exec`, and variable assignments.
fn is_shell_prefix(word: &str) -> bool {
    let assignment = word.split_once('=').is_some_and(|(name, _)| {
        name.starts_with(|c: char| c.is_ascii_alphabetic() || c == '_')
            && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
    });
    assignment
        || matches!(
            word,
            "if" | "then"
                | "else"
                | "elif"
                | "do"
                | "while"
                | "until"
                | "!"
                | "{"
                | "exec"
                | "command"
        )
}

/// The `glint-lda ...` commands of a script: each as its words from the program on, with
/// `${VAR:+...}` expanded, and the flags that only such a conditional expansion passes.
fn glint_calls(script: &str) -> Vec<(Vec<String>, BTreeSet<String>)> {
    let mut calls = Vec::new();
    for words in shell_commands(script) {
        let Some(start) = words.iter().position(|w| !is_shell_prefix(w)) else {
            continue;
        };
        if !is_glint_program(&words[start]) {
            continue;
        }
        let mut argv = vec![words[start].clone()];
        let mut conditional = BTreeSet::new();
        for w in &words[start + 1..] {
            match conditional_words(w) {
                Some(inner) => {
                    for x in inner {
                        if x.starts_with("--") {
                            conditional.insert(x.split('=').next().unwrap_or(&x).to_string());
                        }
                        argv.push(x);
                    }
                }
                None => argv.push(w.clone()),
            }
        }
        calls.push((argv, conditional));
    }
    calls
}

fn is_shell(program: &str) -> bool {
    matches!(
        program.rsplit('/').next(),
        Some("sh" | "bash" | "dash" | "ash")
    )
}

/// `sh -n` on a container's script (skipped where there is no sh).
fn check_sh_syntax(origin: &str, script: &str, errors: &mut Vec<String>) {
    if let Ok(out) = Command::new("sh").args(["-n", "-c", script]).output()
        && !out.status.success()
    {
        errors.push(format!(
            "{origin}: its sh -c script is not valid sh: {}",
            String::from_utf8_lossy(&out.stderr).trim()
        ));
    }
}

// ---------------------------------------------------------------------------------------------
// The checker

/// Errors about how `glint-lda <role>` is called with `flags` (from `origin`).
fn check_flags(
    origin: &str,
    role: &str,
    flags: &[String],
    help: Help,
    failed_roles: &mut BTreeSet<String>,
    errors: &mut Vec<String>,
) {
    if !ROLES.contains(&role) {
        errors.push(format!(
            "{origin}: runs `glint-lda {role}`: {role} is not one of the cluster roles {ROLES:?}"
        ));
        return;
    }
    match help(role) {
        Err(why) => {
            if failed_roles.insert(role.to_string()) {
                errors.push(format!(
                    "`glint-lda {role} --help` failed ({why}), so {origin} and any other \
                     `glint-lda {role}` cannot be checked (flags used: {})",
                    flags.join(" ")
                ));
            }
        }
        Ok(text) => {
            let known: BTreeSet<String> = long_options(&text).into_iter().collect();
            for flag in flags {
                if !known.contains(flag) {
                    errors.push(format!(
                        "{origin}: `glint-lda {role}` has no flag {flag} (not in `glint-lda {role} --help`)"
                    ));
                }
            }
        }
    }
}

fn load(files: &[(String, String)], errors: &mut Vec<String>) -> Vec<Object> {
    let mut objects = Vec::new();
    for (file, source) in files {
        let docs = match YamlLoader::load_from_str(source) {
            Ok(docs) => docs,
            Err(e) => {
                errors.push(format!("{file}: not valid YAML: {e}"));
                continue;
            }
        };
        for doc in docs {
            if matches!(doc, Yaml::Null) {
                continue; // an empty document, e.g. a trailing `---`
            }
            let (Some(kind), Some(name)) = (text(&doc["kind"]), text(&doc["metadata"]["name"]))
            else {
                errors.push(format!("{file}: a document without kind or metadata.name"));
                continue;
            };
            if text(&doc["apiVersion"]).is_none() {
                errors.push(format!("{file}: {kind} {name} has no apiVersion"));
            }
            let namespace =
                text(&doc["metadata"]["namespace"]).unwrap_or_else(|| "default".to_string());
            objects.push(Object {
                origin: format!("{file}: {kind} {name}"),
                kind,
                name,
                namespace,
                doc,
            });
        }
    }
    objects
}

fn template_of(o: &Object) -> Option<Template> {
    let doc = &o.doc;
    let (meta, pod, spec) = match o.kind.as_str() {
        "Deployment" | "StatefulSet" | "DaemonSet" | "ReplicaSet" | "Job" => (
            &doc["spec"]["template"]["metadata"],
            &doc["spec"]["template"]["spec"],
            &doc["spec"],
        ),
        "CronJob" => {
            let job = &doc["spec"]["jobTemplate"]["spec"];
            (&job["template"]["metadata"], &job["template"]["spec"], job)
        }
        "Pod" => (&doc["metadata"], &doc["spec"], &doc["spec"]),
        _ => return None,
    };
    let mut containers = Vec::new();
    for c in items(&pod["containers"])
        .iter()
        .chain(items(&pod["initContainers"]))
    {
        let name = text(&c["name"]).unwrap_or_else(|| "?".to_string());
        containers.push(Container {
            origin: format!("{}, container {name}", o.origin),
            name: name.clone(),
            image: text(&c["image"]).unwrap_or_default(),
            command: c["command"].as_vec().map(|_| strings(&c["command"])),
            args: strings(&c["args"]),
            ports: items(&c["ports"])
                .iter()
                .filter_map(|p| Some((text(&p["name"]), p["containerPort"].as_i64()?)))
                .collect(),
            mounts: items(&c["volumeMounts"])
                .iter()
                .map(|m| Mount {
                    volume: text(&m["name"]).unwrap_or_default(),
                    path: text(&m["mountPath"]).unwrap_or_default(),
                    read_only: m["readOnly"].as_bool() == Some(true),
                })
                .collect(),
            env: items(&c["env"])
                .iter()
                .filter_map(|e| text(&e["name"]))
                .collect(),
            doc: c.clone(),
        });
    }
    let mut volumes = BTreeMap::new();
    for v in items(&pod["volumes"]) {
        let source = if let Some(name) = text(&v["secret"]["secretName"]) {
            Source::Secret {
                name,
                whole: v["secret"]["items"].is_badvalue(),
            }
        } else if !v["persistentVolumeClaim"].is_badvalue() {
            Source::Claim {
                name: text(&v["persistentVolumeClaim"]["claimName"]).unwrap_or_default(),
                read_only: v["persistentVolumeClaim"]["readOnly"].as_bool() == Some(true),
            }
        } else {
            Source::Other
        };
        volumes.insert(text(&v["name"]).unwrap_or_default(), source);
    }
    let claim_templates = items(&doc["spec"]["volumeClaimTemplates"])
        .iter()
        .filter_map(|t| text(&t["metadata"]["name"]))
        .collect();
    Some(Template {
        origin: o.origin.clone(),
        kind: o.kind.clone(),
        namespace: o.namespace.clone(),
        labels: string_map(&meta["labels"]),
        containers,
        volumes,
        claim_templates,
        spec: spec.clone(),
        pod: pod.clone(),
    })
}

fn service_of(o: &Object) -> Option<Service> {
    (o.kind == "Service").then(|| Service {
        origin: o.origin.clone(),
        name: o.name.clone(),
        namespace: o.namespace.clone(),
        headless: text(&o.doc["spec"]["clusterIP"]).as_deref() == Some("None"),
        selector: string_map(&o.doc["spec"]["selector"]),
        ports: items(&o.doc["spec"]["ports"])
            .iter()
            .filter_map(|p| Some((p["port"].as_i64()?, p["targetPort"].clone())))
            .collect(),
    })
}

/// Checks a set of manifests (file name, contents); returns every problem found.
fn check_manifests(files: &[(String, String)], help: Help) -> Vec<String> {
    let mut errors = Vec::new();
    let objects = load(files, &mut errors);

    // Namespaces: with any Namespace defined, everything lives in one of them.
    let namespaces: BTreeSet<&str> = objects
        .iter()
        .filter(|o| o.kind == "Namespace")
        .map(|o| o.name.as_str())
        .collect();
    for o in objects.iter().filter(|o| o.kind != "Namespace") {
        if !namespaces.is_empty() && !namespaces.contains(o.namespace.as_str()) {
            errors.push(format!(
                "{}: namespace {} is not one of the Namespaces defined {namespaces:?}",
                o.origin, o.namespace
            ));
        }
    }

    let secrets: HashMap<(String, String), BTreeSet<String>> = objects
        .iter()
        .filter(|o| o.kind == "Secret")
        .map(|o| {
            let mut k = keys(&o.doc["data"]);
            k.extend(keys(&o.doc["stringData"]));
            ((o.namespace.clone(), o.name.clone()), k)
        })
        .collect();
    // PersistentVolumeClaims and their access modes.
    let claims: BTreeMap<(String, String), Vec<String>> = objects
        .iter()
        .filter(|o| o.kind == "PersistentVolumeClaim")
        .map(|o| {
            let key = (o.namespace.clone(), o.name.clone());
            (key, strings(&o.doc["spec"]["accessModes"]))
        })
        .collect();
    let mut claim_users: BTreeMap<(String, String), Vec<ClaimUser>> = BTreeMap::new();
    let services: Vec<Service> = objects.iter().filter_map(service_of).collect();
    let templates: Vec<Template> = objects.iter().filter_map(template_of).collect();
    let find_service = |ns: &str, name: &str| {
        services
            .iter()
            .find(|s| s.namespace == ns && s.name == name)
    };

    // Services: each selects some pod template, and each of its ports reaches a container port
    // of every template it selects.
    for s in &services {
        if s.selector.is_empty() {
            errors.push(format!("{}: has no selector", s.origin));
            continue;
        }
        let selected: Vec<&Template> = templates.iter().filter(|t| s.selects(t)).collect();
        if selected.is_empty() {
            errors.push(format!(
                "{}: selector {:?} selects no pod template in namespace {}",
                s.origin, s.selector, s.namespace
            ));
        }
        if s.ports.is_empty() {
            errors.push(format!("{}: has no ports", s.origin));
        }
        for (port, target) in &s.ports {
            for t in &selected {
                if t.target(target, *port).is_none() {
                    let shown = text(target).unwrap_or_else(|| port.to_string());
                    errors.push(format!(
                        "{}: port {port} (targetPort {shown}) is not a containerPort of {}",
                        s.origin, t.origin
                    ));
                }
            }
        }
    }

    let mut invocations = Vec::new();
    let mut failed_roles = BTreeSet::new();
    for t in &templates {
        // Labels: the same two on the workload and its pods.
        if t.labels.get(NAME_LABEL).map(String::as_str) != Some("glint-lda") {
            errors.push(format!(
                "{}: pod template lacks {NAME_LABEL}: glint-lda",
                t.origin
            ));
        }
        let component = t.labels.get(COMPONENT_LABEL).cloned();
        if component.is_none() {
            errors.push(format!(
                "{}: pod template lacks {COMPONENT_LABEL}",
                t.origin
            ));
        }
        if t.kind != "Pod" {
            let workload = objects
                .iter()
                .find(|o| o.origin == t.origin)
                .map(|o| string_map(&o.doc["metadata"]["labels"]))
                .unwrap_or_default();
            for key in [NAME_LABEL, COMPONENT_LABEL] {
                if workload.get(key) != t.labels.get(key) {
                    errors.push(format!(
                        "{}: label {key} of the {} differs from its pods'",
                        t.origin, t.kind
                    ));
                }
            }
        }
        // A workload's selector must select its own pods.
        if matches!(
            t.kind.as_str(),
            "Deployment" | "StatefulSet" | "DaemonSet" | "ReplicaSet"
        ) {
            let selector = string_map(&t.spec["selector"]["matchLabels"]);
            if selector.is_empty() || !selector.iter().all(|(k, v)| t.labels.get(k) == Some(v)) {
                errors.push(format!(
                    "{}: selector {selector:?} does not match its pod template's labels {:?}",
                    t.origin, t.labels
                ));
            }
        }
        // Security and resources.
        let pod_non_root = t.pod["securityContext"]["runAsNonRoot"].as_bool() == Some(true);
        for c in &t.containers {
            let sc = &c.doc["securityContext"];
            if !pod_non_root && sc["runAsNonRoot"].as_bool() != Some(true) {
                errors.push(format!("{}: runAsNonRoot is not true", c.origin));
            }
            if sc["readOnlyRootFilesystem"].as_bool() != Some(true) {
                errors.push(format!("{}: readOnlyRootFilesystem is not true", c.origin));
            }
            let r = &c.doc["resources"];
            for (what, value) in [
                ("requests.cpu", &r["requests"]["cpu"]),
                ("requests.memory", &r["requests"]["memory"]),
                ("limits.memory", &r["limits"]["memory"]),
            ] {
                if text(value).is_none() {
                    errors.push(format!("{}: no resources.{what}", c.origin));
                }
            }
        }
        // Volumes: mounts name a volume of the pod; Secrets and claims exist.
        for c in &t.containers {
            for m in &c.mounts {
                if !t.volumes.contains_key(&m.volume) && !t.claim_templates.contains(&m.volume) {
                    errors.push(format!(
                        "{}: mounts volume {} at {}, which the pod does not define \
                         (volumes: {:?}, volumeClaimTemplates: {:?})",
                        c.origin,
                        m.volume,
                        m.path,
                        t.volumes.keys().collect::<Vec<_>>(),
                        t.claim_templates
                    ));
                }
            }
            for e in items(&c.doc["env"]) {
                let r = &e["valueFrom"]["secretKeyRef"];
                if let Some(name) = text(&r["name"]) {
                    match secrets.get(&(t.namespace.clone(), name.clone())) {
                        None => errors.push(format!(
                            "{}: env refers to Secret {name}, not defined in namespace {}",
                            c.origin, t.namespace
                        )),
                        Some(k) => {
                            let key = text(&r["key"]).unwrap_or_default();
                            if !k.contains(&key) {
                                errors.push(format!(
                                    "{}: env refers to key {key} of Secret {name}, which has {k:?}",
                                    c.origin
                                ));
                            }
                        }
                    }
                }
            }
            for e in items(&c.doc["envFrom"]) {
                if let Some(name) = text(&e["secretRef"]["name"])
                    && !secrets.contains_key(&(t.namespace.clone(), name.clone()))
                {
                    errors.push(format!(
                        "{}: envFrom refers to Secret {name}, not defined",
                        c.origin
                    ));
                }
            }
        }
        for v in items(&t.pod["volumes"]) {
            let vname = text(&v["name"]).unwrap_or_default();
            let mut secret_names: Vec<String> =
                text(&v["secret"]["secretName"]).into_iter().collect();
            for s in items(&v["projected"]["sources"]) {
                secret_names.extend(text(&s["secret"]["name"]));
            }
            for name in secret_names {
                if !secrets.contains_key(&(t.namespace.clone(), name.clone())) {
                    errors.push(format!(
                        "{}: volume {vname} refers to Secret {name}, not defined in namespace {}",
                        t.origin, t.namespace
                    ));
                }
            }
            if let Some(claim) = text(&v["persistentVolumeClaim"]["claimName"])
                && !claims.contains_key(&(t.namespace.clone(), claim.clone()))
            {
                errors.push(format!(
                    "{}: volume {vname} refers to PersistentVolumeClaim {claim}, not defined in \
                     namespace {}",
                    t.origin, t.namespace
                ));
            }
        }
        // Claims: who mounts them, how many pods at once, writable or not.
        let at_once = match t.kind.as_str() {
            "Job" => t.spec["parallelism"].as_i64().unwrap_or(1),
            "Deployment" | "StatefulSet" | "ReplicaSet" => t.spec["replicas"].as_i64().unwrap_or(1),
            "DaemonSet" => 2,
            _ => 1,
        };
        for (vname, source) in &t.volumes {
            let Source::Claim { name, read_only } = source else {
                continue;
            };
            let mounts: Vec<&Mount> = t
                .containers
                .iter()
                .flat_map(|c| &c.mounts)
                .filter(|m| &m.volume == vname)
                .collect();
            let read_only = *read_only || mounts.iter().all(|m| m.read_only);
            claim_users
                .entry((t.namespace.clone(), name.clone()))
                .or_default()
                .push((t.origin.clone(), at_once, read_only));
            let strategy =
                text(&t.spec["strategy"]["type"]).unwrap_or_else(|| "RollingUpdate".into());
            if t.kind == "Deployment" && !read_only && strategy != "Recreate" {
                errors.push(format!(
                    "{}: writes to PersistentVolumeClaim {name}, and a {strategy} would run the new \
                     pod beside the old one on it: use strategy Recreate",
                    t.origin
                ));
            }
        }
        // Workload kinds.
        let restart = text(&t.pod["restartPolicy"]).unwrap_or_else(|| "Always".to_string());
        let indexed =
            t.kind == "Job" && text(&t.spec["completionMode"]).as_deref() == Some("Indexed");
        if t.kind == "Job" || t.kind == "CronJob" {
            if restart != "Never" && restart != "OnFailure" {
                errors.push(format!(
                    "{}: a Job's pods need restartPolicy Never or OnFailure, not {restart}",
                    t.origin
                ));
            }
            if !t.spec["backoffLimitPerIndex"].is_badvalue() && (!indexed || restart != "Never") {
                errors.push(format!(
                    "{}: backoffLimitPerIndex needs completionMode: Indexed and restartPolicy: Never",
                    t.origin
                ));
            }
            let policy = &t.spec["podFailurePolicy"];
            if !policy.is_badvalue() {
                if restart != "Never" {
                    errors.push(format!(
                        "{}: podFailurePolicy needs restartPolicy: Never, not {restart}",
                        t.origin
                    ));
                }
                if let Some(p) = text(&t.spec["podReplacementPolicy"])
                    && p != "Failed"
                {
                    errors.push(format!(
                        "{}: podFailurePolicy needs podReplacementPolicy: Failed, not {p}",
                        t.origin
                    ));
                }
                for rule in items(&policy["rules"]) {
                    let action = text(&rule["action"]).unwrap_or_default();
                    if !["Ignore", "FailJob", "FailIndex", "Count"].contains(&action.as_str()) {
                        errors.push(format!(
                            "{}: podFailurePolicy action {action:?} is not Ignore, FailJob, \
                             FailIndex or Count",
                            t.origin
                        ));
                    }
                    if action == "FailIndex" && t.spec["backoffLimitPerIndex"].is_badvalue() {
                        errors.push(format!(
                            "{}: podFailurePolicy action FailIndex needs backoffLimitPerIndex",
                            t.origin
                        ));
                    }
                    let codes = &rule["onExitCodes"];
                    if codes.is_badvalue() == rule["onPodConditions"].is_badvalue() {
                        errors.push(format!(
                            "{}: a podFailurePolicy rule needs exactly one of onExitCodes and \
                             onPodConditions",
                            t.origin
                        ));
                    }
                    if let Some(name) = text(&codes["containerName"])
                        && !t.containers.iter().any(|c| c.name == name)
                    {
                        errors.push(format!(
                            "{}: a podFailurePolicy rule names container {name}, which the pod \
                             does not have",
                            t.origin
                        ));
                    }
                }
            }
        }
        if indexed {
            let completions = t.spec["completions"].as_i64();
            let parallelism = t.spec["parallelism"].as_i64();
            if completions.is_none() || completions != parallelism {
                errors.push(format!(
                    "{}: Indexed Job with completions {} != parallelism {} (every worker must run \
                     at once)",
                    t.origin,
                    completions.map_or("unset".to_string(), |c| c.to_string()),
                    parallelism.map_or("unset".to_string(), |c| c.to_string()),
                ));
            }
        }
        if t.kind == "StatefulSet" {
            let name = text(&t.spec["serviceName"]).unwrap_or_default();
            match find_service(&t.namespace, &name) {
                None => errors.push(format!(
                    "{}: serviceName {name} is not a Service in namespace {}",
                    t.origin, t.namespace
                )),
                Some(s) => {
                    if !s.headless {
                        errors.push(format!(
                            "{}: serviceName {name} is not headless (clusterIP: None)",
                            t.origin
                        ));
                    }
                    if !s.selects(t) {
                        errors.push(format!(
                            "{}: its Service {name} does not select its pods",
                            t.origin
                        ));
                    }
                }
            }
        }
        let pods = match t.kind.as_str() {
            "Job" => t.spec["completions"].as_i64().unwrap_or(1),
            "Deployment" | "StatefulSet" | "ReplicaSet" => t.spec["replicas"].as_i64().unwrap_or(1),
            _ => 1,
        };

        // The glint-lda containers: role, flags, addresses, paths.
        for c in &t.containers {
            if !is_glint_image(&c.image) {
                continue;
            }
            let mut argv = match &c.command {
                None => vec!["glint-lda".to_string()],
                Some(cmd) => cmd.clone(),
            };
            argv.extend(c.args.iter().cloned());
            // `sh -c SCRIPT`: the script's one glint-lda command is checked like direct args.
            let mut conditional = BTreeSet::new();
            let mut script = None;
            if argv.len() >= 2 && is_shell(&argv[0]) && argv[1] == "-c" {
                let Some(source) = argv.get(2).cloned() else {
                    errors.push(format!(
                        "{}: runs {} -c without a script",
                        c.origin, argv[0]
                    ));
                    continue;
                };
                check_sh_syntax(&c.origin, &source, &mut errors);
                let mut calls = glint_calls(&source);
                if calls.len() != 1 {
                    errors.push(format!(
                        "{}: its sh -c script runs glint-lda {} times; the checks need exactly one \
                         command (pass flags that depend on a test as ${{VAR:+--flag}})",
                        c.origin,
                        calls.len()
                    ));
                    continue;
                }
                let (words, cond) = calls.remove(0);
                argv = words;
                conditional = cond;
                script = Some(source);
            }
            let direct = argv
                .first()
                .is_some_and(|p| p.rsplit('/').next() == Some("glint-lda"));
            if !direct {
                errors.push(format!(
                    "{}: runs {:?}, not glint-lda directly, so its flags cannot be checked",
                    c.origin, argv
                ));
                continue;
            }
            let Some(role) = argv.get(1).cloned() else {
                errors.push(format!("{}: runs glint-lda without a subcommand", c.origin));
                continue;
            };
            let flags = parse_flags(&argv[2..]);
            let names: Vec<String> = flags.iter().map(|(f, _)| f.clone()).collect();
            check_flags(
                &c.origin,
                &role,
                &names,
                help,
                &mut failed_roles,
                &mut errors,
            );
            let expected = if role == "train" {
                "driver"
            } else {
                role.as_str()
            };
            if let Some(component) = &component
                && component != expected
            {
                errors.push(format!(
                    "{}: runs `glint-lda {role}` but its {COMPONENT_LABEL} is {component} \
                     (expected {expected})",
                    c.origin
                ));
            }
            for arg in &argv {
                for var in env_refs(arg) {
                    if !c.env.contains(var) {
                        errors.push(format!(
                            "{}: argument {arg} uses $({var}), which the container's env does not \
                             define",
                            c.origin
                        ));
                    }
                }
            }
            for (flag, value) in &flags {
                let Some(value) = value else { continue };
                match flag.as_str() {
                    "--bind" => check_bind(c, t, &services, value, &mut errors),
                    "--master" | "--advertise" => {
                        check_dial(c, t, &services, flag, value, &mut errors);
                    }
                    _ => {}
                }
                if let Some((_, written, persistent)) = PATH_FLAGS.iter().find(|(f, ..)| f == flag)
                {
                    check_path(
                        c,
                        t,
                        &secrets,
                        flag,
                        value,
                        (*written, *persistent),
                        &mut errors,
                    );
                }
            }
            let retried = retries(t);
            if role == "train" && flags.iter().any(|(f, _)| f == "--workers") {
                check_resume(
                    &c.origin,
                    &flags,
                    &conditional,
                    script.as_deref(),
                    retried.as_deref(),
                    &mut errors,
                );
            }
            if matches!(role.as_str(), "worker" | "train")
                && t.kind == "Job"
                && restart == "Never"
                && retried.is_some()
                && text(&t.spec["podReplacementPolicy"]).as_deref() != Some("Failed")
            {
                errors.push(format!(
                    "{}: the Job replaces failed pods, but without podReplacementPolicy: Failed a \
                     replacement may start while the pod it replaces still runs (two drivers of \
                     one run, two workers of one index)",
                    t.origin
                ));
            }
            invocations.push(Invocation {
                origin: c.origin.clone(),
                role,
                flags,
                indexed_completions: if indexed {
                    t.spec["completions"].as_i64()
                } else {
                    None
                },
                pods,
                retried,
            });
        }
    }
    // A claim that several pods mount at once, on any node, must allow it.
    for ((ns, name), users) in &claim_users {
        let total: i64 = users.iter().map(|(_, n, _)| n).sum();
        let Some(modes) = claims.get(&(ns.clone(), name.clone())) else {
            continue;
        };
        let reads_only = users.iter().all(|(_, _, ro)| *ro);
        let shared = modes.iter().any(|m| m == "ReadWriteMany")
            || (reads_only && modes.iter().any(|m| m == "ReadOnlyMany"));
        if total > 1 && !shared {
            let who: Vec<&str> = users.iter().map(|(o, _, _)| o.as_str()).collect();
            errors.push(format!(
                "PersistentVolumeClaim {name} is mounted by {total} pods at once ({}), but its \
                 accessModes {modes:?} have no ReadWriteMany{}",
                who.join("; "),
                if reads_only { " or ReadOnlyMany" } else { "" }
            ));
        }
    }
    check_commented_flags(files, &invocations, help, &mut errors);
    check_across(&invocations, &mut errors);
    errors
}

/// Why the pods of this workload are started again after a failure, if they are.
fn retries(t: &Template) -> Option<String> {
    let restart = text(&t.pod["restartPolicy"]).unwrap_or_else(|| "Always".to_string());
    match t.kind.as_str() {
        "Job" | "CronJob" => {
            if restart == "OnFailure" {
                return Some("restartPolicy OnFailure".to_string());
            }
            if let Some(n) = t.spec["backoffLimitPerIndex"].as_i64() {
                return (n > 0).then(|| format!("backoffLimitPerIndex {n}"));
            }
            match t.spec["backoffLimit"].as_i64() {
                None => Some("backoffLimit unset, i.e. 6".to_string()),
                Some(0) => None,
                Some(n) => Some(format!("backoffLimit {n}")),
            }
        }
        "Pod" if restart == "Never" => None,
        _ => Some(format!("restartPolicy {restart} of a {}", t.kind)),
    }
}

/// A driver of workers (`train --workers`) that may be started again must resume its run, and
/// only then: `--resume` exactly when `--out/cluster-run.json` exists, tested by its script.
fn check_resume(
    origin: &str,
    flags: &[(String, Option<String>)],
    conditional: &BTreeSet<String>,
    script: Option<&str>,
    retried: Option<&str>,
    errors: &mut Vec<String>,
) {
    let out = flags
        .iter()
        .find(|(f, _)| f == "--out")
        .and_then(|(_, v)| v.clone())
        .unwrap_or_default();
    let out = out.trim_end_matches('/');
    let resume = flags.iter().any(|(f, _)| f == "--resume");
    if resume && !conditional.contains("--resume") {
        errors.push(format!(
            "{origin}: train --resume on every start fails the first one (no run is recorded in \
             {out} yet): pass it only when {out}/cluster-run.json exists, from a sh -c script \
             (${{RESUME:+--resume}})"
        ));
    }
    if let Some(why) = retried
        && !resume
    {
        errors.push(format!(
            "{origin}: the driver's pod is started again ({why}), but without --resume a new \
             start begins a second run beside the first: pass --resume when \
             {out}/cluster-run.json exists, from a sh -c script"
        ));
    }
    if let Some(script) = script {
        let words = shell_commands(script).concat();
        let mut tested = false;
        for file in ["cluster-run.json", "corpus.json"] {
            let expected = format!("{out}/{file}");
            for w in words.iter().filter(|w| w.ends_with(&format!("/{file}"))) {
                if *w == expected {
                    tested |= file == "cluster-run.json";
                } else {
                    errors.push(format!(
                        "{origin}: the script tests {w}, but --out is {out} (expected {expected})"
                    ));
                }
            }
        }
        if resume && !tested {
            errors.push(format!(
                "{origin}: --resume depends on the script, but it never tests {out}/cluster-run.json"
            ));
        }
    }
}

/// Commented-out flags (`# - --flag`, or a comment line starting with `--flag`) must be flags of
/// the roles their file runs, so that uncommenting one works; a flag a comment quotes
/// (`` `--flag ...` ``) must be a flag of some role.
fn check_commented_flags(
    files: &[(String, String)],
    invocations: &[Invocation],
    help: Help,
    errors: &mut Vec<String>,
) {
    for (file, source) in files {
        let prefix = format!("{file}: ");
        let roles: BTreeSet<&str> = invocations
            .iter()
            .filter(|i| i.origin.starts_with(&prefix))
            .map(|i| i.role.as_str())
            .collect();
        let helps: Vec<String> = roles.iter().filter_map(|r| help(r).ok()).collect();
        if roles.is_empty() || helps.len() < roles.len() {
            continue; // runs nothing, or a --help failed (reported already)
        }
        let known: BTreeSet<String> = helps.iter().flat_map(|h| long_options(h)).collect();
        let anywhere: BTreeSet<String> = ROLES
            .iter()
            .filter_map(|r| help(r).ok())
            .flat_map(|h| long_options(&h))
            .collect();
        let roles: Vec<&str> = roles.into_iter().collect();
        for (n, line) in source.lines().enumerate() {
            let Some(comment) = line.trim_start().strip_prefix('#') else {
                continue;
            };
            let lead = comment.trim_start();
            let lead = lead.strip_prefix("- ").map_or(lead, str::trim_start);
            if lead.starts_with("--")
                && let Some(flag) = long_options(lead).into_iter().next()
                && !known.contains(&flag)
            {
                errors.push(format!(
                    "{file}, line {}: commented-out flag {flag} is not in the --help of \
                     `glint-lda {}`",
                    n + 1,
                    roles.join("` or `glint-lda ")
                ));
            }
            for (k, span) in comment.split('`').enumerate() {
                if k % 2 == 1
                    && span.starts_with("--")
                    && let Some(flag) = long_options(span).into_iter().next()
                    && !anywhere.contains(&flag)
                {
                    errors.push(format!(
                        "{file}, line {}: the comment names {flag}, which no `glint-lda <role> \
                         --help` lists",
                        n + 1
                    ));
                }
            }
        }
    }
}

/// TLS on every role or on none: the master and servers serve it (`--tls-cert`) together, and
/// then every client (a server registering, the workers, the driver) verifies them
/// (`--tls-ca`); when they require client certificates (`--tls-client-ca`), every client
/// presents one. `calls` are (origin, role, flags).
fn check_tls(calls: &[(&str, &str, BTreeSet<&str>)], errors: &mut Vec<String>) {
    let serving: Vec<_> = calls
        .iter()
        .filter(|(_, r, _)| matches!(*r, "master" | "server"))
        .collect();
    let tls = serving
        .iter()
        .filter(|(_, _, f)| f.contains("--tls-cert"))
        .count();
    if tls > 0 && tls < serving.len() {
        for (o, r, _) in serving.iter().filter(|(_, _, f)| !f.contains("--tls-cert")) {
            errors.push(format!(
                "{o}: `glint-lda {r}` serves in clear text (no --tls-cert) while the others \
                 serve TLS: clients with --tls-ca cannot reach it"
            ));
        }
    }
    let mutual = serving
        .iter()
        .any(|(_, _, f)| f.contains("--tls-client-ca"));
    for (o, r, f) in calls
        .iter()
        .filter(|(_, r, _)| matches!(*r, "server" | "worker" | "train"))
    {
        if tls > 0 && !f.contains("--tls-ca") {
            errors.push(format!(
                "{o}: the master and servers serve TLS, but `glint-lda {r}` has no --tls-ca: it \
                 would dial them in clear text"
            ));
        }
        if tls == 0 && f.contains("--tls-ca") {
            errors.push(format!(
                "{o}: `glint-lda {r}` has --tls-ca, but the master and servers do not serve TLS \
                 (no --tls-cert)"
            ));
        }
        if mutual && !(f.contains("--tls-client-cert") && f.contains("--tls-client-key")) {
            errors.push(format!(
                "{o}: the cluster requires client certificates (--tls-client-ca), but \
                 `glint-lda {r}` presents none (--tls-client-cert and --tls-client-key)"
            ));
        }
    }
}

/// `--bind HOST:PORT`: the port is a containerPort of this container, and a Service routes to it.
fn check_bind(
    c: &Container,
    t: &Template,
    services: &[Service],
    value: &str,
    errors: &mut Vec<String>,
) {
    let Some((_, port)) = split_addr(value) else {
        errors.push(format!("{}: --bind {value} is not HOST:PORT", c.origin));
        return;
    };
    if !c.ports.iter().any(|(_, p)| *p == port) {
        errors.push(format!(
            "{}: --bind {value}: port {port} is not a containerPort of the container",
            c.origin
        ));
    }
    let routed = services.iter().filter(|s| s.selects(t)).any(|s| {
        s.ports
            .iter()
            .any(|(p, target)| t.target(target, *p) == Some(port))
    });
    if !routed {
        errors.push(format!(
            "{}: --bind {value}: no Service selecting these pods routes to port {port}",
            c.origin
        ));
    }
}

/// `--master HOST:PORT` or `--advertise HOST:PORT`: HOST names a Service of the manifests
/// (`svc`, `svc.ns...`, or a StatefulSet pod's `pod.svc.ns...`) that has PORT.
fn check_dial(
    c: &Container,
    t: &Template,
    services: &[Service],
    flag: &str,
    value: &str,
    errors: &mut Vec<String>,
) {
    let Some((host, port)) = split_addr(value) else {
        errors.push(format!("{}: {flag} {value} is not HOST:PORT", c.origin));
        return;
    };
    let labels: Vec<&str> = host.split('.').collect();
    let namespace_at = |i: usize| match labels.get(i) {
        Some(ns) if !ns.starts_with("$(") && *ns != "svc" => ns.to_string(),
        _ => t.namespace.clone(),
    };
    let lookup = |i: usize| {
        let name = labels.get(i)?;
        let ns = namespace_at(i + 1);
        services
            .iter()
            .find(|s| s.name == *name && s.namespace == ns)
    };
    // `svc[.ns...]`, else `pod.svc[.ns...]`: the per-pod DNS name of a StatefulSet.
    let (service, per_pod) = match lookup(0) {
        Some(s) => (s, false),
        None => match lookup(1) {
            Some(s) => (s, true),
            None => {
                let shown = if labels[0].starts_with("$(") {
                    labels.get(1)
                } else {
                    labels.first()
                };
                errors.push(format!(
                    "{}: {flag} {value}: there is no Service {} in the manifests",
                    c.origin,
                    shown.unwrap_or(&host)
                ));
                return;
            }
        },
    };
    if !service.has_port(port) {
        errors.push(format!(
            "{}: {flag} {value}: Service {} has no port {port}",
            c.origin, service.name
        ));
    }
    if per_pod && !service.headless {
        errors.push(format!(
            "{}: {flag} {value}: a per-pod name needs a headless Service, and {} is not",
            c.origin, service.name
        ));
    }
    if flag == "--advertise" {
        if !service.selects(t) {
            errors.push(format!(
                "{}: --advertise {value}: Service {} does not select these pods",
                c.origin, service.name
            ));
        }
        if per_pod
            && (t.kind != "StatefulSet"
                || text(&t.spec["serviceName"]).as_deref() != Some(service.name.as_str()))
        {
            errors.push(format!(
                "{}: --advertise {value}: per-pod DNS names under {} exist only for a StatefulSet \
                 whose serviceName is {}",
                c.origin, service.name, service.name
            ));
        }
    }
}

/// A path flag: on a volume of the container, writable if the role writes there, on a
/// PersistentVolumeClaim if what it writes must outlive the pod, and a key of the Secret when it
/// points into a Secret volume.
fn check_path(
    c: &Container,
    t: &Template,
    secrets: &HashMap<(String, String), BTreeSet<String>>,
    flag: &str,
    value: &str,
    (written, persistent): (bool, bool),
    errors: &mut Vec<String>,
) {
    let mount = c
        .mounts
        .iter()
        .filter_map(|m| under(value, &m.path).map(|rest| (m, rest)))
        .max_by_key(|(m, _)| m.path.len());
    let Some((mount, rest)) = mount else {
        errors.push(format!(
            "{}: {flag} {value} is on no volume of the container (mounts: {:?})",
            c.origin,
            c.mounts.iter().map(|m| m.path.as_str()).collect::<Vec<_>>()
        ));
        return;
    };
    let source = t.volumes.get(&mount.volume);
    let claimed =
        matches!(source, Some(Source::Claim { .. })) || t.claim_templates.contains(&mount.volume);
    if persistent && !claimed {
        errors.push(format!(
            "{}: {flag} {value} is on volume {} ({}), which does not outlive the pod: use a \
             PersistentVolumeClaim",
            c.origin,
            mount.volume,
            match source {
                Some(Source::Secret { .. }) => "a Secret",
                None => "undefined",
                _ => "not a PersistentVolumeClaim",
            }
        ));
    }
    if written {
        let read_only = mount.read_only
            || matches!(source, Some(Source::Secret { .. }))
            || matches!(
                source,
                Some(Source::Claim {
                    read_only: true,
                    ..
                })
            );
        if read_only {
            errors.push(format!(
                "{}: {flag} {value} writes to a read-only mount ({})",
                c.origin, mount.path
            ));
        }
    }
    if let Some(Source::Secret { name, whole: true }) = source
        && let Some(keys) = secrets.get(&(t.namespace.clone(), name.clone()))
        && !keys.contains(&rest)
    {
        errors.push(format!(
            "{}: {flag} {value}: Secret {name} (mounted at {}) has no key {rest} (keys: {keys:?})",
            c.origin, mount.path
        ));
    }
}

/// Checks between the roles: one master address, workers and driver on one job with matching
/// counts, the driver waiting for as many servers as there are, workers able to keep the
/// driver's checkpoints and to rejoin, TLS on all roles or none.
fn check_across(invocations: &[Invocation], errors: &mut Vec<String>) {
    let tls: Vec<(&str, &str, BTreeSet<&str>)> = invocations
        .iter()
        .map(|i| {
            let flags = i.flags.iter().map(|(f, _)| f.as_str()).collect();
            (i.origin.as_str(), i.role.as_str(), flags)
        })
        .collect();
    check_tls(&tls, errors);
    for role in ROLES {
        if !invocations.iter().any(|i| i.role == role) {
            errors.push(format!("no manifest runs `glint-lda {role}`"));
        }
    }
    let masters: BTreeSet<&str> = invocations
        .iter()
        .filter_map(|i| i.flag("--master"))
        .collect();
    if masters.len() > 1 {
        errors.push(format!("the roles dial different masters: {masters:?}"));
    }
    let workers: Vec<&Invocation> = invocations.iter().filter(|i| i.role == "worker").collect();
    for w in &workers {
        if w.flag("--job").is_none() {
            errors.push(format!("{}: `glint-lda worker` without --job", w.origin));
        }
        if w.flag("--index").is_none() {
            match w.indexed_completions {
                None => errors.push(format!(
                    "{}: a worker without --index reads JOB_COMPLETION_INDEX, which only an \
                     Indexed Job sets",
                    w.origin
                )),
                Some(completions) => {
                    let n = w.flag("--workers");
                    if n != Some(completions.to_string().as_str()) {
                        errors.push(format!(
                            "{}: --workers {} but the Indexed Job has {completions} completions",
                            w.origin,
                            n.unwrap_or("unset")
                        ));
                    }
                }
            }
        }
    }
    let servers: i64 = invocations
        .iter()
        .filter(|i| i.role == "server")
        .map(|i| i.pods)
        .sum();
    for d in invocations.iter().filter(|i| i.role == "train") {
        let job = d.flag("--job").unwrap_or_default();
        let checkpoints = d.flag("--checkpoint-every").filter(|n| *n != "0");
        for w in workers.iter().filter(|w| w.flag("--job") == Some(job)) {
            if let Some(n) = checkpoints
                && w.flag("--state-dir").is_none()
            {
                errors.push(format!(
                    "{}: the driver checkpoints every {n} iterations (--checkpoint-every), but this \
                     worker has no --state-dir to keep them in: it cannot rejoin a rollback past \
                     iteration 0",
                    w.origin
                ));
            }
            if let Some(why) = &w.retried
                && d.flag("--max-recoveries") == Some("0")
            {
                errors.push(format!(
                    "{}: worker pods are started again ({why}), but the driver allows no recovery \
                     (--max-recoveries 0), so a replaced worker cannot rejoin",
                    w.origin
                ));
            }
        }
        let running: i64 = workers
            .iter()
            .filter(|w| w.flag("--job") == Some(job))
            .map(|w| w.pods)
            .sum();
        if running == 0 {
            errors.push(format!(
                "{}: train --job {job}: no worker runs job {job}",
                d.origin
            ));
        } else if d.flag("--workers") != Some(running.to_string().as_str()) {
            errors.push(format!(
                "{}: train --workers {} but {running} worker pods run job {job}",
                d.origin,
                d.flag("--workers").unwrap_or("unset")
            ));
        }
        if let Some(n) = d.flag("--servers")
            && n != servers.to_string()
        {
            errors.push(format!(
                "{}: train --servers {n} but the manifests run {servers} server pods",
                d.origin
            ));
        }
    }
}

/// Checks the `glint-lda` calls of a shell script: roles, flags against `--help`, every role
/// present, the worker and driver given the same --workers and --job, workers with a
/// --state-dir for the driver's checkpoints, --resume only when the run is recorded, and TLS on
/// all roles or none (flags passed as `${VAR:+--flag ...}` count as given).
fn check_script(name: &str, script: &str, help: Help) -> Vec<String> {
    let mut errors = Vec::new();
    let mut failed_roles = BTreeSet::new();
    let joined = script.replace("\\\n", " ");
    // (origin, role, flags, the words after the role)
    let mut calls: Vec<(String, String, Vec<String>, String)> = Vec::new();
    for (n, line) in joined.lines().enumerate() {
        if line.trim_start().starts_with('#') {
            continue;
        }
        let words: Vec<&str> = line.split_whitespace().collect();
        let Some(at) = words.iter().position(|w| is_glint_program(w)) else {
            continue;
        };
        let Some(role) = words.get(at + 1) else {
            continue;
        };
        let role = role.trim_matches(|c| c == '"' || c == '\'').to_string();
        let rest = words[at + 2..].join(" ");
        let flags = long_options(&rest);
        let origin = format!("{name}, logical line {}", n + 1);
        check_flags(&origin, &role, &flags, help, &mut failed_roles, &mut errors);
        calls.push((origin, role, flags, rest));
    }
    for role in ROLES {
        if !calls.iter().any(|(_, r, _, _)| r == role) {
            errors.push(format!("{name}: never runs `glint-lda {role}`"));
        }
    }
    // The value after a flag, as written.
    let value = |rest: &str, flag: &str| {
        let words: Vec<&str> = rest.split_whitespace().collect();
        let at = words.iter().position(|w| *w == flag)?;
        words.get(at + 1).map(|v| v.to_string())
    };
    for flag in ["--workers", "--job"] {
        let values: BTreeSet<Option<String>> = calls
            .iter()
            .filter(|(_, r, _, _)| r == "worker" || r == "train")
            .map(|(_, _, _, rest)| value(rest, flag))
            .collect();
        if values.len() > 1 || values.contains(&None) {
            errors.push(format!(
                "{name}: the workers and the driver must get the same {flag}, got {values:?}"
            ));
        }
    }
    let has = |flags: &[String], flag: &str| flags.iter().any(|f| f == flag);
    for (origin, _, flags, rest) in calls.iter().filter(|(_, r, _, _)| r == "train") {
        if has(flags, "--checkpoint-every") {
            for (w, _, wflags, _) in calls.iter().filter(|(_, r, _, _)| r == "worker") {
                if !has(wflags, "--state-dir") {
                    errors.push(format!(
                        "{w}: the driver checkpoints (--checkpoint-every), but the worker has no \
                         --state-dir to keep them in"
                    ));
                }
            }
        }
        if has(flags, "--resume") {
            if !rest.contains(":+--resume") {
                errors.push(format!(
                    "{origin}: --resume on every start fails the first one: pass it as \
                     ${{RESUME:+--resume}}, set when the run is recorded"
                ));
            }
            if !script.contains("/cluster-run.json") {
                errors.push(format!(
                    "{name}: --resume depends on the script, but it never tests \
                     .../cluster-run.json"
                ));
            }
        }
    }
    let tls: Vec<(&str, &str, BTreeSet<&str>)> = calls
        .iter()
        .map(|(o, r, f, _)| {
            (
                o.as_str(),
                r.as_str(),
                f.iter().map(String::as_str).collect(),
            )
        })
        .collect();
    check_tls(&tls, &mut errors);
    errors
}

// ---------------------------------------------------------------------------------------------
// The real files

fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .unwrap()
        .to_path_buf()
}

fn yaml_files(dir: &Path, out: &mut Vec<(String, String)>) {
    let mut entries: Vec<_> = std::fs::read_dir(dir)
        .unwrap_or_else(|e| panic!("reading {}: {e}", dir.display()))
        .map(|e| e.unwrap().path())
        .collect();
    entries.sort();
    for path in entries {
        if path.is_dir() {
            yaml_files(&path, out);
        } else if path.extension().is_some_and(|e| e == "yaml" || e == "yml") {
            let name = path.strip_prefix(repo()).unwrap().display().to_string();
            out.push((name, std::fs::read_to_string(&path).unwrap()));
        }
    }
}

/// `glint-lda <role> --help` of the binary under test, once per role.
fn real_help() -> impl Fn(&str) -> Result<String, String> {
    let cache: RefCell<HashMap<String, Result<String, String>>> = RefCell::new(HashMap::new());
    move |role: &str| {
        cache
            .borrow_mut()
            .entry(role.to_string())
            .or_insert_with(|| {
                let out = Command::new(BIN)
                    .args([role, "--help"])
                    .output()
                    .map_err(|e| e.to_string())?;
                if out.status.success() {
                    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
                } else {
                    let stderr = String::from_utf8_lossy(&out.stderr);
                    Err(stderr.lines().next().unwrap_or("no output").to_string())
                }
            })
            .clone()
    }
}

#[test]
fn kubernetes_manifests_agree_with_each_other_and_with_the_binary() {
    let mut files = Vec::new();
    yaml_files(&repo().join("deploy/k8s"), &mut files);
    assert!(
        files.len() >= 6,
        "expected the manifests under deploy/k8s, found {files:?}"
    );
    let help = real_help();
    let errors = check_manifests(&files, &help);
    assert!(
        errors.is_empty(),
        "{} problem(s) in deploy/k8s:\n  {}",
        errors.len(),
        errors.join("\n  ")
    );
}

#[test]
fn slurm_script_is_valid_bash_and_uses_real_flags() {
    let path = repo().join("deploy/slurm/glint-lda.sbatch");
    let script = std::fs::read_to_string(&path).unwrap();
    match Command::new("bash").arg("-n").arg(&path).output() {
        Ok(out) => assert!(
            out.status.success(),
            "bash -n {}: {}",
            path.display(),
            String::from_utf8_lossy(&out.stderr)
        ),
        Err(e) => eprintln!("skipping bash -n: cannot run bash ({e})"),
    }
    let help = real_help();
    let errors = check_script("deploy/slurm/glint-lda.sbatch", &script, &help);
    assert!(
        errors.is_empty(),
        "{} problem(s):\n  {}",
        errors.len(),
        errors.join("\n  ")
    );
}

#[test]
fn dockerfile_builds_this_binary_and_runs_as_the_manifests_user() {
    let dockerfile = std::fs::read_to_string(repo().join("deploy/Dockerfile")).unwrap();
    assert!(dockerfile.contains("cargo build --release -p cli --locked"));
    assert!(dockerfile.contains("target/release/glint-lda"));
    assert!(dockerfile.contains(r#"ENTRYPOINT ["glint-lda"]"#));
    let uid = dockerfile
        .lines()
        .find_map(|l| l.strip_prefix("USER "))
        .and_then(|u| u.split(':').next())
        .expect("a USER line")
        .trim()
        .to_string();
    assert_ne!(uid, "0");
    let mut files = Vec::new();
    yaml_files(&repo().join("deploy/k8s"), &mut files);
    for (name, source) in &files {
        for line in source.lines() {
            if let Some(v) = line.trim().strip_prefix("runAsUser:") {
                assert_eq!(
                    v.trim(),
                    uid,
                    "{name}: runAsUser differs from the image's USER"
                );
            }
        }
    }
    let ignore = std::fs::read_to_string(repo().join(".dockerignore")).unwrap();
    for path in ["target/", ".git", "benchsuite/work"] {
        assert!(
            ignore.contains(path),
            ".dockerignore does not exclude {path}"
        );
    }
}

// ---------------------------------------------------------------------------------------------
// The checks themselves: a valid fixture passes, and each deliberate break is reported.

const FIXTURE: &str = r#"
apiVersion: v1
kind: Namespace
metadata: {name: ns1}
---
apiVersion: v1
kind: Secret
metadata: {name: tok, namespace: ns1}
stringData: {token: ""}
---
apiVersion: v1
kind: PersistentVolumeClaim
metadata: {name: corpus, namespace: ns1}
spec: {accessModes: [ReadWriteMany], resources: {requests: {storage: 1Gi}}}
---
apiVersion: v1
kind: PersistentVolumeClaim
metadata: {name: models, namespace: ns1}
spec: {accessModes: [ReadWriteOnce], resources: {requests: {storage: 1Gi}}}
---
apiVersion: v1
kind: PersistentVolumeClaim
metadata: {name: state, namespace: ns1}
spec: {accessModes: [ReadWriteMany], resources: {requests: {storage: 1Gi}}}
---
apiVersion: v1
kind: PersistentVolumeClaim
metadata: {name: reg, namespace: ns1}
spec: {accessModes: [ReadWriteOnce], resources: {requests: {storage: 1Gi}}}
---
apiVersion: v1
kind: Service
metadata: {name: mastersvc, namespace: ns1}
spec:
  selector: {app.kubernetes.io/name: glint-lda, app.kubernetes.io/component: master}
  ports: [{name: grpc, port: 7070, targetPort: mport}]
---
apiVersion: apps/v1
kind: Deployment
metadata:
  name: master
  namespace: ns1
  labels: {app.kubernetes.io/name: glint-lda, app.kubernetes.io/component: master}
spec:
  strategy: {type: Recreate}
  selector:
    matchLabels: {app.kubernetes.io/component: master}
  template:
    metadata:
      labels: {app.kubernetes.io/name: glint-lda, app.kubernetes.io/component: master}
    spec:
      securityContext: {runAsNonRoot: true, runAsUser: 10001}
      containers:
        - name: master
          image: registry.example/glint-lda:1
          args: [master, --bind, "0.0.0.0:7070", --data-dir, /var/reg, --token-file, /etc/mtok/token]
          ports: [{name: mport, containerPort: 7070}]
          resources: {requests: {cpu: 100m, memory: 1Gi}, limits: {memory: 1Gi}}
          securityContext: {readOnlyRootFilesystem: true}
          volumeMounts: [{name: mreg, mountPath: /var/reg}, {name: mtok, mountPath: /etc/mtok, readOnly: true}]
      volumes: [{name: mreg, persistentVolumeClaim: {claimName: reg}}, {name: mtok, secret: {secretName: tok}}]
---
apiVersion: v1
kind: Service
metadata: {name: shards, namespace: ns1}
spec:
  clusterIP: None
  selector: {app.kubernetes.io/name: glint-lda, app.kubernetes.io/component: server}
  ports: [{port: 7071}]
---
apiVersion: apps/v1
kind: StatefulSet
metadata:
  name: shard
  namespace: ns1
  labels: {app.kubernetes.io/name: glint-lda, app.kubernetes.io/component: server}
spec:
  serviceName: shards
  replicas: 2
  selector:
    matchLabels: {app.kubernetes.io/component: server}
  template:
    metadata:
      labels: {app.kubernetes.io/name: glint-lda, app.kubernetes.io/component: server}
    spec:
      securityContext: {runAsNonRoot: true}
      containers:
        - name: server
          image: glint-lda
          env: [{name: POD_NAME, valueFrom: {fieldRef: {fieldPath: metadata.name}}}]
          command: [/usr/local/bin/glint-lda]
          args: [server, --master, "mastersvc:7070", --bind, "0.0.0.0:7071", --advertise, "$(POD_NAME).shards:7071", --data-dir, /var/snap, --token-file, /etc/stok/token]
          ports: [{containerPort: 7071}]
          resources: {requests: {cpu: 1, memory: 2Gi}, limits: {memory: 2Gi}}
          securityContext: {readOnlyRootFilesystem: true}
          volumeMounts: [{name: snap, mountPath: /var/snap}, {name: stok, mountPath: /etc/stok, readOnly: true}]
      volumes: [{name: stok, secret: {secretName: tok}}]
  volumeClaimTemplates:
    - metadata: {name: snap}
      spec: {accessModes: [ReadWriteOnce], resources: {requests: {storage: 1Gi}}}
---
apiVersion: batch/v1
kind: Job
metadata:
  name: workers
  namespace: ns1
  labels: {app.kubernetes.io/name: glint-lda, app.kubernetes.io/component: worker}
spec:
  completionMode: Indexed
  completions: 3
  parallelism: 3
  backoffLimitPerIndex: 1
  podReplacementPolicy: Failed
  template:
    metadata:
      labels: {app.kubernetes.io/name: glint-lda, app.kubernetes.io/component: worker}
    spec:
      restartPolicy: Never # one pod per index
      securityContext: {runAsNonRoot: true}
      containers:
        - name: worker
          image: glint-lda:2
          # - --threads
          args: [worker, "--master=mastersvc:7070", --job, j1, --corpus, /data/c, --state-dir, /state, --workers, "3", --token-file, /etc/wtok/token]
          resources: {requests: {cpu: 2, memory: 3Gi}, limits: {memory: 3Gi}}
          securityContext: {readOnlyRootFilesystem: true}
          volumeMounts: [{name: wcorpus, mountPath: /data/c, readOnly: true}, {name: wstate, mountPath: /state}, {name: wtok, mountPath: /etc/wtok, readOnly: true}]
      volumes:
        - {name: wcorpus, persistentVolumeClaim: {claimName: corpus, readOnly: true}}
        - {name: wstate, persistentVolumeClaim: {claimName: state}}
        - {name: wtok, secret: {secretName: tok}}
---
apiVersion: batch/v1
kind: Job
metadata:
  name: driver
  namespace: ns1
  labels: {app.kubernetes.io/name: glint-lda, app.kubernetes.io/component: driver}
spec:
  backoffLimit: 2
  podReplacementPolicy: Failed
  podFailurePolicy:
    rules:
      - {action: Ignore, onPodConditions: [{type: DisruptionTarget}]}
      - {action: FailJob, onExitCodes: {containerName: driver, operator: In, values: [2]}}
  template:
    metadata:
      labels: {app.kubernetes.io/name: glint-lda, app.kubernetes.io/component: driver}
    spec:
      restartPolicy: Never # replaced, not restarted
      securityContext: {runAsNonRoot: true}
      containers:
        - name: driver
          image: glint-lda:3
          # Held-out perplexity: add `--test /data/c/t`.
          command: [/bin/sh, -c]
          args:
            - |
              R=
              if [ -f /data/m/run/cluster-run.json ]; then R=1; fi
              exec glint-lda train ${R:+--resume} --master mastersvc:7070 --servers 2 \
                --workers 3 --job j1 --corpus /data/c/x --topics 5 --iterations 9 \
                --out /data/m/run --checkpoint-every 3 --token-file /etc/dtok/token
          resources: {requests: {cpu: 1, memory: 4Gi}, limits: {memory: 4Gi}}
          securityContext: {readOnlyRootFilesystem: true, allowPrivilegeEscalation: false}
          volumeMounts: [{name: dcorpus, mountPath: /data/c, readOnly: true}, {name: dmodels, mountPath: /data/m}, {name: dtok, mountPath: /etc/dtok, readOnly: true}]
      volumes:
        - {name: dcorpus, persistentVolumeClaim: {claimName: corpus}}
        - {name: dmodels, persistentVolumeClaim: {claimName: models}}
        - {name: dtok, secret: {secretName: tok}}
"#;

/// The flags of the fixture's roles, as a `--help` would list them.
fn fake_help(role: &str) -> Result<String, String> {
    let flags = match role {
        "master" => {
            "--bind <ADDR> --data-dir <DIR> --token-file <FILE> --tls-cert --tls-key --tls-client-ca"
        }
        "server" => {
            "--master <ADDR>\n  --bind <ADDR>\n  --advertise <ADDR>\n  --data-dir <DIR>\n  --token-file <FILE>\n  \
             --tls-cert --tls-key --tls-client-ca --tls-ca --tls-client-cert --tls-client-key"
        }
        "worker" => {
            "--master --job --corpus --index --workers --threads --token-file --state-dir --tls-ca \
             --tls-client-cert --tls-client-key"
        }
        "train" => {
            "--master --servers --workers --job --corpus --topics --iterations --out --test --token-file \
             --checkpoint-every --max-recoveries --resume --tls-ca --tls-client-cert --tls-client-key"
        }
        _ => return Err(format!("error: unrecognized subcommand '{role}'")),
    };
    Ok(format!(
        "Usage: glint-lda {role} [OPTIONS]\n\nOptions:\n  {flags}\n  -h, --help  Print help\n"
    ))
}

fn check_fixture(source: &str) -> Vec<String> {
    check_manifests(
        &[("fixture.yaml".to_string(), source.to_string())],
        &fake_help,
    )
}

/// Replaces the one occurrence of `from` in the fixture by `to` and requires an error containing
/// `expected`.
fn assert_breaks(from: &str, to: &str, expected: &str) {
    assert_eq!(
        FIXTURE.matches(from).count(),
        1,
        "{from:?} must occur once in the fixture"
    );
    let errors = check_fixture(&FIXTURE.replacen(from, to, 1));
    assert!(
        errors.iter().any(|e| e.contains(expected)),
        "replacing {from:?} by {to:?}: expected an error containing {expected:?}, got {errors:#?}"
    );
}

#[test]
fn the_fixture_passes() {
    let errors = check_fixture(FIXTURE);
    assert!(errors.is_empty(), "{errors:#?}");
}

#[test]
fn invalid_yaml_is_reported() {
    let errors = check_fixture(&format!("{FIXTURE}---\nkind: [unclosed\n"));
    assert!(
        errors.iter().any(|e| e.contains("not valid YAML")),
        "{errors:#?}"
    );
}

#[test]
fn a_mount_without_its_volume_is_reported() {
    assert_breaks(
        "{name: mtok, secret",
        "{name: mtok2, secret",
        "mounts volume mtok at /etc/mtok, which the pod does not define",
    );
    // The StatefulSet's mount of a volumeClaimTemplate counts, until the template is renamed.
    assert_breaks(
        "- metadata: {name: snap}",
        "- metadata: {name: snaps}",
        "mounts volume snap",
    );
}

#[test]
fn a_service_selecting_nothing_or_the_wrong_port_is_reported() {
    assert_breaks(
        "selector: {app.kubernetes.io/name: glint-lda, app.kubernetes.io/component: master}",
        "selector: {app.kubernetes.io/name: glint-lda, app.kubernetes.io/component: mastr}",
        "selects no pod template",
    );
    assert_breaks(
        "targetPort: mport",
        "targetPort: nport",
        "targetPort nport) is not a containerPort",
    );
    assert_breaks(
        "ports: [{port: 7071}]",
        "ports: [{port: 7072}]",
        "port 7072 (targetPort 7072)",
    );
}

#[test]
fn a_workload_selector_not_matching_its_pods_is_reported() {
    assert_breaks(
        "matchLabels: {app.kubernetes.io/component: master}",
        "matchLabels: {app.kubernetes.io/component: boss}",
        "does not match its pod template's labels",
    );
}

#[test]
fn ports_in_arguments_are_checked() {
    assert_breaks(
        r#""0.0.0.0:7070""#,
        r#""0.0.0.0:7080""#,
        "--bind 0.0.0.0:7080: port 7080 is not a containerPort",
    );
    assert_breaks(
        r#""--master=mastersvc:7070""#,
        r#""--master=mastersvc:7000""#,
        "Service mastersvc has no port 7000",
    );
    assert_breaks(
        "--master mastersvc:7070",
        "--master nomaster:7070",
        "there is no Service nomaster",
    );
    assert_breaks(
        r#""$(POD_NAME).shards:7071""#,
        r#""$(POD_NAME).mastersvc:7071""#,
        "Service mastersvc has no port 7071",
    );
    assert_breaks(
        "  clusterIP: None\n",
        "",
        "a per-pod name needs a headless Service",
    );
}

#[test]
fn missing_secrets_and_claims_are_reported() {
    assert_breaks(
        "{name: wtok, secret: {secretName: tok}}",
        "{name: wtok, secret: {secretName: tok2}}",
        "refers to Secret tok2, not defined",
    );
    assert_breaks(
        "claimName: models",
        "claimName: modelz",
        "refers to PersistentVolumeClaim modelz, not defined",
    );
    assert_breaks(
        "metadata: {name: models, namespace: ns1}",
        "metadata: {name: models, namespace: ns2}",
        "namespace ns2 is not one of the Namespaces",
    );
}

#[test]
fn the_statefulset_needs_its_headless_service() {
    assert_breaks(
        "  clusterIP: None\n",
        "",
        "serviceName shards is not headless",
    );
    assert_breaks(
        "serviceName: shards",
        "serviceName: shardz",
        "serviceName shardz is not a Service",
    );
}

#[test]
fn the_indexed_job_is_checked() {
    assert_breaks(
        "parallelism: 3",
        "parallelism: 2",
        "completions 3 != parallelism 2",
    );
    assert_breaks(
        "restartPolicy: Never # one pod per index",
        "restartPolicy: OnFailure # one pod per index",
        "backoffLimitPerIndex needs completionMode: Indexed and restartPolicy: Never",
    );
    assert_breaks(
        "completionMode: Indexed",
        "completionMode: NonIndexed",
        "JOB_COMPLETION_INDEX",
    );
}

#[test]
fn roles_and_flags_are_checked_against_the_help() {
    assert_breaks(
        "args: [worker,",
        "args: [sampler,",
        "sampler is not one of the cluster roles",
    );
    assert_breaks(
        "--data-dir, /var/snap",
        "--snapshot-dir, /var/snap",
        "has no flag --snapshot-dir",
    );
    assert_breaks(
        "command: [/usr/local/bin/glint-lda]",
        "command: [python3]",
        "not glint-lda directly",
    );
    // A role the binary does not have (yet): --help fails, and that is an error.
    let no_worker = |role: &str| {
        if role == "worker" {
            Err("unrecognized subcommand".to_string())
        } else {
            fake_help(role)
        }
    };
    let errors = check_manifests(&[("f.yaml".to_string(), FIXTURE.to_string())], &no_worker);
    assert!(
        errors
            .iter()
            .any(|e| e.contains("`glint-lda worker --help` failed")),
        "{errors:#?}"
    );
}

#[test]
fn counts_across_the_roles_are_checked() {
    assert_breaks(
        "--workers 3 --job j1",
        "--workers 4 --job j1",
        "train --workers 4 but 3 worker pods run job j1",
    );
    assert_breaks(
        r#"--workers, "3", --token-file, /etc/wtok"#,
        r#"--workers, "2", --token-file, /etc/wtok"#,
        "--workers 2 but the Indexed Job has 3 completions",
    );
    assert_breaks(
        "--servers 2",
        "--servers 3",
        "train --servers 3 but the manifests run 2",
    );
    assert_breaks("--job j1", "--job j2", "no worker runs job j2");
}

#[test]
fn paths_and_variables_in_arguments_are_checked() {
    assert_breaks(
        "--token-file /etc/dtok/token",
        "--token-file /etc/ttok/token",
        "--token-file /etc/ttok/token is on no volume",
    );
    assert_breaks(
        "/etc/stok/token]",
        "/etc/stok/tokn]",
        "Secret tok (mounted at /etc/stok) has no key tokn",
    );
    assert_breaks(
        "{name: dmodels, mountPath: /data/m}",
        "{name: dmodels, mountPath: /data/m, readOnly: true}",
        "--out /data/m/run writes to a read-only mount",
    );
    assert_breaks(
        "env: [{name: POD_NAME,",
        "env: [{name: POD_ID,",
        "uses $(POD_NAME)",
    );
}

#[test]
fn labels_security_and_resources_are_checked() {
    assert_breaks(
        "      labels: {app.kubernetes.io/name: glint-lda, app.kubernetes.io/component: driver}",
        "      labels: {app.kubernetes.io/name: glint-lda, app.kubernetes.io/component: server}",
        "runs `glint-lda train` but its app.kubernetes.io/component is server",
    );
    assert_breaks(
        "{runAsNonRoot: true, runAsUser: 10001}",
        "{runAsUser: 10001}",
        "runAsNonRoot is not true",
    );
    assert_breaks(
        "{readOnlyRootFilesystem: true, allowPrivilegeEscalation: false}",
        "{readOnlyRootFilesystem: false, allowPrivilegeEscalation: false}",
        "readOnlyRootFilesystem is not true",
    );
    assert_breaks(
        "resources: {requests: {cpu: 2, memory: 3Gi}, limits: {memory: 3Gi}}",
        "resources: {requests: {cpu: 2, memory: 3Gi}}",
        "no resources.limits.memory",
    );
}

#[test]
fn the_drivers_sh_script_is_read_and_checked() {
    // Its flags, conditional ones included, against the help.
    assert_breaks("--topics 5", "--topic 5", "has no flag --topic");
    assert_breaks("${R:+--resume}", "${R:+--resum}", "has no flag --resum");
    // One glint-lda command, so that the checks know which flags it passes.
    assert_breaks(
        "R=\n",
        "R=\n              glint-lda train --out /data/m/run\n",
        "runs glint-lda 2 times",
    );
    // Valid sh (where there is a sh to ask).
    if Command::new("sh").args(["-c", "true"]).output().is_ok() {
        assert_breaks("then R=1; fi", "then R=1;", "is not valid sh");
    }
}

#[test]
fn a_retried_driver_must_resume_and_only_then() {
    assert_breaks(
        "${R:+--resume}",
        "--resume",
        "train --resume on every start fails the first one",
    );
    assert_breaks(
        "${R:+--resume} ",
        "",
        "the driver's pod is started again (backoffLimit 2), but without --resume",
    );
    assert_breaks(
        "[ -f /data/m/run/cluster-run.json ]",
        "[ -f /data/m/old/cluster-run.json ]",
        "the script tests /data/m/old/cluster-run.json, but --out is /data/m/run",
    );
    assert_breaks(
        "[ -f /data/m/run/cluster-run.json ]",
        "[ -n \"$X\" ]",
        "never tests /data/m/run/cluster-run.json",
    );
    // A driver that is never started again needs no --resume.
    let once = FIXTURE
        .replacen("backoffLimit: 2", "backoffLimit: 0", 1)
        .replacen("${R:+--resume} ", "", 1);
    let errors = check_fixture(&once);
    assert!(errors.is_empty(), "{errors:#?}");
}

#[test]
fn job_retry_settings_are_checked() {
    assert_breaks(
        "backoffLimitPerIndex: 1\n  podReplacementPolicy: Failed\n",
        "backoffLimitPerIndex: 1\n",
        "without podReplacementPolicy: Failed a replacement may start",
    );
    assert_breaks(
        "{containerName: driver,",
        "{containerName: drivr,",
        "names container drivr, which the pod does not have",
    );
    assert_breaks(
        "restartPolicy: Never # replaced, not restarted",
        "restartPolicy: OnFailure # replaced, not restarted",
        "podFailurePolicy needs restartPolicy: Never, not OnFailure",
    );
    assert_breaks(
        "{action: Ignore,",
        "{action: Skip,",
        "action \"Skip\" is not",
    );
    assert_breaks(
        "--checkpoint-every 3",
        "--checkpoint-every 3 --max-recoveries 0",
        "a replaced worker cannot rejoin",
    );
}

#[test]
fn checkpoints_and_shared_volumes_are_checked() {
    assert_breaks(
        "--state-dir, /state, ",
        "",
        "the driver checkpoints every 3 iterations (--checkpoint-every), but this worker has no \
         --state-dir",
    );
    assert_breaks(
        "{name: wstate, persistentVolumeClaim: {claimName: state}}",
        "{name: wstate, emptyDir: {}}",
        "--state-dir /state is on volume wstate (not a PersistentVolumeClaim), which does not \
         outlive the pod",
    );
    assert_breaks(
        "metadata: {name: state, namespace: ns1}\nspec: {accessModes: [ReadWriteMany]",
        "metadata: {name: state, namespace: ns1}\nspec: {accessModes: [ReadWriteOnce]",
        "PersistentVolumeClaim state is mounted by 3 pods at once",
    );
    // Read only by every pod: ReadOnlyMany will do, ReadWriteOnce will not.
    let corpus = "metadata: {name: corpus, namespace: ns1}\nspec: {accessModes: [ReadWriteMany]";
    let errors = check_fixture(&FIXTURE.replacen(
        corpus,
        "metadata: {name: corpus, namespace: ns1}\nspec: {accessModes: [ReadOnlyMany]",
        1,
    ));
    assert!(errors.is_empty(), "{errors:#?}");
    assert_breaks(
        corpus,
        "metadata: {name: corpus, namespace: ns1}\nspec: {accessModes: [ReadWriteOnce]",
        "have no ReadWriteMany or ReadOnlyMany",
    );
    assert_breaks(
        "  strategy: {type: Recreate}\n",
        "",
        "writes to PersistentVolumeClaim reg, and a RollingUpdate would run the new pod beside",
    );
}

#[test]
fn tls_must_be_on_for_every_role_or_none() {
    assert_breaks(
        "--token-file, /etc/mtok/token]",
        "--token-file, /etc/mtok/token, --tls-cert, /etc/mtok/token, --tls-key, /etc/mtok/token]",
        "`glint-lda server` serves in clear text (no --tls-cert) while the others serve TLS",
    );
    assert_breaks(
        "--token-file, /etc/mtok/token]",
        "--token-file, /etc/mtok/token, --tls-cert, /etc/mtok/token, --tls-key, /etc/mtok/token]",
        "container worker: the master and servers serve TLS, but `glint-lda worker` has no --tls-ca",
    );
    assert_breaks(
        "--token-file, /etc/wtok/token]",
        "--token-file, /etc/wtok/token, --tls-ca, /etc/wtok/token]",
        "`glint-lda worker` has --tls-ca, but the master and servers do not serve TLS",
    );
    // Mutual TLS: every client presents a certificate.
    let set = |flags: &[&'static str]| flags.iter().copied().collect::<BTreeSet<&str>>();
    let serve = ["--tls-cert", "--tls-key", "--tls-client-ca"];
    let client = ["--tls-ca", "--tls-client-cert", "--tls-client-key"];
    let server: Vec<&str> = serve.iter().chain(&client).copied().collect();
    let mut calls = vec![
        ("m", "master", set(&serve)),
        ("s", "server", set(&server)),
        ("w", "worker", set(&client)),
        ("d", "train", set(&client)),
    ];
    let mut errors = Vec::new();
    check_tls(&calls, &mut errors);
    assert!(errors.is_empty(), "{errors:#?}");
    calls[3].2 = set(&["--tls-ca"]);
    check_tls(&calls, &mut errors);
    assert!(
        errors.len() == 1 && errors[0].starts_with("d: the cluster requires client certificates"),
        "{errors:#?}"
    );
}

#[test]
fn commented_out_flags_are_checked() {
    assert_breaks(
        "# - --threads",
        "# - --thread",
        "fixture.yaml, line 123: commented-out flag --thread is not in the --help of `glint-lda",
    );
    assert_breaks(
        "`--test /data/c/t`",
        "`--tst /data/c/t`",
        "line 155: the comment names --tst, which no",
    );
}

const SCRIPT: &str = r#"#!/usr/bin/env bash
"$GLINT" master --bind 0.0.0.0:7070 --token-file "$T" > "$LOG" &
srun bash -c 'exec "$GLINT" server --master "$M" --bind 0.0.0.0:7071 \
  --advertise "$(hostname):7071" --token-file "$T"' &
srun "$GLINT" worker --master "$M" --job "$J" --corpus "$C" --workers "$W" --state-dir "$S" \
  --token-file "$T" &
[ -f "$O/cluster-run.json" ] && RESUME=1
# "$GLINT" train --bogus (a comment)
"$GLINT" train --master "$M" --workers "$W" --job "$J" --corpus "$C" --topics 5 \
  --iterations 2 --out "$O" --checkpoint-every 5 --token-file "$T" ${TEST:+--test "$TEST"} \
  ${RESUME:+--resume} || status=$?
"#;

#[test]
fn the_script_checks_pass_on_a_good_script_and_fail_on_broken_ones() {
    assert!(
        check_script("s", SCRIPT, &fake_help).is_empty(),
        "{:#?}",
        check_script("s", SCRIPT, &fake_help)
    );
    let broken = |from: &str, to: &str, expected: &str| {
        assert_eq!(SCRIPT.matches(from).count(), 1, "{from:?}");
        let errors = check_script("s", &SCRIPT.replacen(from, to, 1), &fake_help);
        assert!(
            errors.iter().any(|e| e.contains(expected)),
            "{from:?} -> {to:?}: {errors:#?}"
        );
    };
    broken("--advertise", "--announce", "has no flag --announce");
    broken("${TEST:+--test", "${TEST:+--tst", "has no flag --tst");
    broken(
        "\"$GLINT\" train --master",
        "\"$GLINT\" trian --master",
        "never runs `glint-lda train`",
    );
    broken(
        r#"--workers "$W" --job "$J" --corpus "$C" --topics"#,
        r#"--workers 3 --job "$J" --corpus "$C" --topics"#,
        "same --workers",
    );
    broken(
        r#"--state-dir "$S" "#,
        "",
        "the driver checkpoints (--checkpoint-every), but the worker has no --state-dir",
    );
    broken(
        "${RESUME:+--resume}",
        "--resume",
        "--resume on every start fails the first one",
    );
    broken(
        "[ -f \"$O/cluster-run.json\" ] && RESUME=1",
        "RESUME=1",
        "never tests .../cluster-run.json",
    );
    // TLS on the master only.
    broken(
        r#"--token-file "$T" > "$LOG""#,
        r#"--token-file "$T" ${K:+--tls-cert "$C" --tls-key "$K"} > "$LOG""#,
        "serves in clear text (no --tls-cert) while the others serve TLS",
    );
    broken(
        r#"--token-file "$T" > "$LOG""#,
        r#"--token-file "$T" ${K:+--tls-cert "$C" --tls-key "$K"} > "$LOG""#,
        "`glint-lda train` has no --tls-ca",
    );
}
