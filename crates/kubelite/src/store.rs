//! Object storage: an in-memory index over a durable backend (none, or SQLite), one global
//! resourceVersion, and the watch event history.

use std::collections::{BTreeMap, VecDeque};
use std::path::Path;
use std::sync::{Arc, Mutex, MutexGuard};

use serde_json::Value;
use tokio::sync::broadcast;

use crate::Error;
use crate::registry::Registry;
use crate::status::ApiError;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EventType {
    Added,
    Modified,
    Deleted,
}

impl EventType {
    pub fn as_str(self) -> &'static str {
        match self {
            EventType::Added => "ADDED",
            EventType::Modified => "MODIFIED",
            EventType::Deleted => "DELETED",
        }
    }
}

#[derive(Debug)]
pub struct Event {
    pub rv: u64,
    /// "group/resource"
    pub key: String,
    pub ns: String,
    pub name: String,
    pub kind: EventType,
    pub object: Arc<Value>,
    /// the object before this change (for MODIFIED/DELETED)
    pub old: Option<Arc<Value>>,
    /// The plain JSON watch line for this event, serialized once for all watchers.
    pub line: std::sync::OnceLock<hyper::body::Bytes>,
}

/// What a backend loads: the last resourceVersion and (group/resource, namespace, name, object).
pub type Loaded = (u64, Vec<(String, String, String, Value)>);

/// Durable storage behind the in-memory index.
pub trait Backend: Send {
    /// All stored objects ("group/resource", namespace, name, object) and the last resourceVersion.
    fn load(&mut self) -> Result<Loaded, Error>;
    fn put(&mut self, key: &str, ns: &str, name: &str, obj: &Value, rv: u64) -> Result<(), Error>;
    fn delete(&mut self, key: &str, ns: &str, name: &str, rv: u64) -> Result<(), Error>;
    fn flush(&mut self) -> Result<(), Error>;
}

pub struct MemoryBackend;

impl Backend for MemoryBackend {
    fn load(&mut self) -> Result<Loaded, Error> {
        Ok((0, Vec::new()))
    }
    fn put(&mut self, _: &str, _: &str, _: &str, _: &Value, _: u64) -> Result<(), Error> {
        Ok(())
    }
    fn delete(&mut self, _: &str, _: &str, _: &str, _: u64) -> Result<(), Error> {
        Ok(())
    }
    fn flush(&mut self) -> Result<(), Error> {
        Ok(())
    }
}

pub struct SqliteBackend {
    conn: rusqlite::Connection,
}

impl SqliteBackend {
    pub fn open(path: &Path) -> Result<SqliteBackend, Error> {
        let conn = rusqlite::Connection::open(path)?;
        conn.pragma_update(None, "journal_mode", "WAL")?;
        conn.pragma_update(None, "synchronous", "FULL")?;
        conn.busy_timeout(std::time::Duration::from_secs(5))?;
        conn.execute_batch(
            "CREATE TABLE IF NOT EXISTS objects (
                gr TEXT NOT NULL, ns TEXT NOT NULL, name TEXT NOT NULL,
                rv INTEGER NOT NULL, body TEXT NOT NULL,
                PRIMARY KEY (gr, ns, name));
             CREATE TABLE IF NOT EXISTS meta (k TEXT PRIMARY KEY, v INTEGER NOT NULL);",
        )?;
        Ok(SqliteBackend { conn })
    }
}

impl Backend for SqliteBackend {
    fn load(&mut self) -> Result<Loaded, Error> {
        let rv: i64 = self
            .conn
            .query_row("SELECT v FROM meta WHERE k = 'rv'", [], |r| r.get(0))
            .or_else(|e| match e {
                rusqlite::Error::QueryReturnedNoRows => Ok(0),
                e => Err(e),
            })?;
        let mut stmt = self
            .conn
            .prepare("SELECT gr, ns, name, body FROM objects ORDER BY rv")?;
        let rows = stmt.query_map([], |r| {
            Ok((
                r.get::<_, String>(0)?,
                r.get::<_, String>(1)?,
                r.get::<_, String>(2)?,
                r.get::<_, String>(3)?,
            ))
        })?;
        let mut out = Vec::new();
        for row in rows {
            let (gr, ns, name, body) = row?;
            let v: Value = serde_json::from_str(&body).map_err(|source| Error::Corrupt {
                key: format!("{gr}/{ns}/{name}"),
                source,
            })?;
            out.push((gr, ns, name, v));
        }
        Ok((u64::try_from(rv).unwrap_or(0), out))
    }

    fn put(&mut self, key: &str, ns: &str, name: &str, obj: &Value, rv: u64) -> Result<(), Error> {
        let body = obj.to_string();
        let rv =
            i64::try_from(rv).map_err(|_| Error::Storage("resourceVersion overflow".into()))?;
        let tx = self.conn.transaction()?;
        tx.execute(
            "INSERT INTO objects (gr, ns, name, rv, body) VALUES (?1, ?2, ?3, ?4, ?5)
             ON CONFLICT (gr, ns, name) DO UPDATE SET rv = excluded.rv, body = excluded.body",
            rusqlite::params![key, ns, name, rv, body],
        )?;
        tx.execute(
            "INSERT INTO meta (k, v) VALUES ('rv', ?1) ON CONFLICT (k) DO UPDATE SET v = excluded.v",
            [rv],
        )?;
        tx.commit()?;
        Ok(())
    }

    fn delete(&mut self, key: &str, ns: &str, name: &str, rv: u64) -> Result<(), Error> {
        let rv =
            i64::try_from(rv).map_err(|_| Error::Storage("resourceVersion overflow".into()))?;
        let tx = self.conn.transaction()?;
        tx.execute(
            "DELETE FROM objects WHERE gr = ?1 AND ns = ?2 AND name = ?3",
            rusqlite::params![key, ns, name],
        )?;
        tx.execute(
            "INSERT INTO meta (k, v) VALUES ('rv', ?1) ON CONFLICT (k) DO UPDATE SET v = excluded.v",
            [rv],
        )?;
        tx.commit()?;
        Ok(())
    }

    fn flush(&mut self) -> Result<(), Error> {
        self.conn
            .query_row("PRAGMA wal_checkpoint(TRUNCATE)", [], |_| Ok(()))?;
        Ok(())
    }
}

pub type Objects = BTreeMap<(String, String), Value>;

pub struct State {
    pub rv: u64,
    pub objects: BTreeMap<String, Objects>,
    pub registry: Registry,
    history: VecDeque<Arc<Event>>,
    history_cap: usize,
    /// Watches from a resourceVersion older than this get 410 Gone.
    pub oldest_rv: u64,
    backend: Box<dyn Backend>,
    tx: broadcast::Sender<Arc<Event>>,
}

pub struct Store {
    state: Mutex<State>,
    tx: broadcast::Sender<Arc<Event>>,
}

fn set_rv(obj: &mut Value, rv: u64) {
    if let Some(m) = obj.get_mut("metadata").and_then(Value::as_object_mut) {
        m.insert("resourceVersion".into(), Value::String(rv.to_string()));
    }
}

impl Store {
    pub fn open(mut backend: Box<dyn Backend>, history_cap: usize) -> Result<Store, Error> {
        let (rv, items) = backend.load()?;
        let mut registry = Registry::builtin();
        let mut objects: BTreeMap<String, Objects> = BTreeMap::new();
        let mut max_rv = rv;
        for (gr, ns, name, obj) in items {
            if gr == "apiextensions.k8s.io/customresourcedefinitions" {
                registry.add_crd(&obj);
            }
            if let Some(r) = obj
                .pointer("/metadata/resourceVersion")
                .and_then(Value::as_str)
                .and_then(|s| s.parse::<u64>().ok())
            {
                max_rv = max_rv.max(r);
            }
            objects.entry(gr).or_default().insert((ns, name), obj);
        }
        let (tx, _) = broadcast::channel(8192);
        Ok(Store {
            state: Mutex::new(State {
                rv: max_rv,
                objects,
                registry,
                history: VecDeque::new(),
                history_cap: history_cap.max(1),
                oldest_rv: max_rv,
                backend,
                tx: tx.clone(),
            }),
            tx,
        })
    }

    pub fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    pub fn subscribe(&self) -> broadcast::Receiver<Arc<Event>> {
        self.tx.subscribe()
    }

    pub fn current_rv(&self) -> u64 {
        self.lock().rv
    }

    pub fn flush(&self) -> Result<(), Error> {
        self.lock().backend.flush()
    }
}

impl State {
    pub fn get(&self, key: &str, ns: &str, name: &str) -> Option<&Value> {
        self.objects
            .get(key)
            .and_then(|m| m.get(&(ns.to_string(), name.to_string())))
    }

    pub fn list(&self, key: &str, ns: Option<&str>) -> Vec<&Value> {
        match (self.objects.get(key), ns) {
            (None, _) => Vec::new(),
            (Some(m), None) => m.values().collect(),
            // Objects are ordered by (namespace, name): one namespace is one range.
            (Some(m), Some(ns)) => m
                .range((ns.to_string(), String::new())..)
                .take_while(|((n, _), _)| n == ns)
                .map(|(_, v)| v)
                .collect(),
        }
    }

    /// Store an object (create or replace), assigning the next resourceVersion.
    pub fn put(
        &mut self,
        key: &str,
        ns: &str,
        name: &str,
        mut obj: Value,
    ) -> Result<Value, ApiError> {
        let rv = self.rv + 1;
        set_rv(&mut obj, rv);
        self.backend
            .put(key, ns, name, &obj, rv)
            .map_err(|e| ApiError::internal(e.to_string()))?;
        self.rv = rv;
        let old = self
            .objects
            .entry(key.to_string())
            .or_default()
            .insert((ns.to_string(), name.to_string()), obj.clone());
        let kind = if old.is_some() {
            EventType::Modified
        } else {
            EventType::Added
        };
        self.emit(Event {
            rv,
            key: key.to_string(),
            ns: ns.to_string(),
            name: name.to_string(),
            kind,
            object: Arc::new(obj.clone()),
            old: old.map(Arc::new),
            line: std::sync::OnceLock::new(),
        });
        Ok(obj)
    }

    /// Remove an object; returns it with the deletion's resourceVersion.
    pub fn remove(&mut self, key: &str, ns: &str, name: &str) -> Result<Option<Value>, ApiError> {
        let k = (ns.to_string(), name.to_string());
        if !self.objects.get(key).is_some_and(|m| m.contains_key(&k)) {
            return Ok(None);
        }
        let rv = self.rv + 1;
        self.backend
            .delete(key, ns, name, rv)
            .map_err(|e| ApiError::internal(e.to_string()))?;
        self.rv = rv;
        let Some(old) = self.objects.get_mut(key).and_then(|m| m.remove(&k)) else {
            return Ok(None);
        };
        let mut obj = old.clone();
        set_rv(&mut obj, rv);
        self.emit(Event {
            rv,
            key: key.to_string(),
            ns: ns.to_string(),
            name: name.to_string(),
            kind: EventType::Deleted,
            object: Arc::new(obj.clone()),
            old: Some(Arc::new(old)),
            line: std::sync::OnceLock::new(),
        });
        Ok(Some(obj))
    }

    fn emit(&mut self, ev: Event) {
        let ev = Arc::new(ev);
        self.history.push_back(ev.clone());
        while self.history.len() > self.history_cap {
            if let Some(e) = self.history.pop_front() {
                self.oldest_rv = e.rv;
            }
        }
        let _ = self.tx.send(ev);
    }

    /// Events after `rv`, or None when `rv` is older than the kept history.
    pub fn events_since(&self, rv: u64) -> Option<Vec<Arc<Event>>> {
        Some(self.events_after(rv)?.cloned().collect())
    }

    /// The kept events after `rv`, oldest first, without copying them; None when `rv` is older
    /// than the kept history (some changes after it are no longer known).
    pub fn events_after(&self, rv: u64) -> Option<impl Iterator<Item = &Arc<Event>>> {
        if rv < self.oldest_rv {
            return None;
        }
        // The history is in resourceVersion order.
        let first = self.history.partition_point(|e| e.rv <= rv);
        Some(self.history.range(first..))
    }

    /// Drop history up to and including `rv` (for tests of 410 Gone).
    pub fn compact(&mut self, rv: u64) {
        while self.history.front().is_some_and(|e| e.rv <= rv) {
            self.history.pop_front();
        }
        self.oldest_rv = self.oldest_rv.max(rv.min(self.rv));
    }
}

impl State {
    /// Subscribe while holding the lock, so no event is missed between a snapshot and the stream.
    pub fn subscribe(&self) -> broadcast::Receiver<Arc<Event>> {
        self.tx.subscribe()
    }
}
