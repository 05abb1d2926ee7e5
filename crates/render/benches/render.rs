//! Criterion benchmark: one application of 10 components × 3 traits, rendered with the built-in
//! definitions, cold (an empty CompileCache: every definition the application uses is compiled
//! first) and warm (the catalog compiled once; rendering only).

use criterion::{Criterion, criterion_group, criterion_main};
use render::catalog::CompileCache;
use render::{Catalog, Definition, DefinitionKind, RenderContext};
use serde_json::json;
use std::hint::black_box;

/// Ten components: webservices, workers, a statefulset and a daemon, each with three traits.
fn components() -> Vec<oam::ApplicationComponent> {
    (0..10)
        .map(|i| {
            let (type_, traits) = match i % 4 {
                0 | 1 => (
                    "webservice",
                    json!([
                        {"type": "scaler", "properties": {"replicas": 3}},
                        {"type": "labels", "properties": {"team": "shop", "tier": "web"}},
                        {"type": "gateway", "properties": {"domain": format!("svc{i}.example.com"), "http": {"/": 8080}}},
                    ]),
                ),
                2 => (
                    "worker",
                    json!([
                        {"type": "scaler", "properties": {"replicas": 2}},
                        {"type": "env", "properties": {"env": {"QUEUE": "orders", "MODE": "prod"}}},
                        {"type": "annotations", "properties": {"owner": "shop"}},
                    ]),
                ),
                _ => (
                    "statefulset",
                    json!([
                        {"type": "labels", "properties": {"team": "shop"}},
                        {"type": "resource", "properties": {"cpu": 0.5, "memory": "512Mi"}},
                        {"type": "sidecar", "properties": {"name": "exporter", "image": "prom/exporter:1"}},
                    ]),
                ),
            };
            serde_json::from_value(json!({
                "name": format!("svc{i}"),
                "type": type_,
                "properties": {
                    "image": format!("registry.example.com/shop/svc{i}:1.{i}.0"),
                    "ports": [{"port": 8080, "expose": true}],
                    "cpu": "250m",
                    "memory": "256Mi",
                    "env": [{"name": "INDEX", "value": format!("{i}")}],
                },
                "traits": traits,
            }))
            .unwrap_or_default()
        })
        .collect()
}

/// The built-in definitions the application uses.
fn used(components: &[oam::ApplicationComponent]) -> Vec<Definition> {
    let all = render::builtin::definitions().unwrap_or_default();
    all.into_iter()
        .filter(|d| {
            components.iter().any(|c| match d.kind {
                DefinitionKind::Component => c.type_ == d.name,
                DefinitionKind::Trait => c.traits.iter().any(|t| t.type_ == d.name),
                _ => false,
            })
        })
        .collect()
}

fn catalog(cache: &CompileCache, defs: &[Definition]) -> Catalog {
    let mut cat = Catalog::new();
    for d in defs {
        if let Ok(c) = cache.compile(d.clone()) {
            cat.insert(c);
        }
    }
    cat
}

fn render_all(
    components: &[oam::ApplicationComponent],
    cat: &Catalog,
    ctx: &RenderContext,
) -> usize {
    let mut objects = 0;
    for c in components {
        match render::render_component(c, cat, ctx) {
            Ok(r) => objects += r.objects().count(),
            Err(e) => panic!("{}: {e}", c.name),
        }
    }
    objects
}

fn bench(c: &mut Criterion) {
    let comps = components();
    let defs = used(&comps);
    let ctx = RenderContext {
        app_name: "shop".into(),
        namespace: "prod".into(),
        app_revision: "shop-v1".into(),
        app_revision_num: 1,
        components: comps.iter().map(|c| c.name.clone()).collect(),
        ..Default::default()
    };
    // Check once that everything renders, and how much.
    let warm_cache = CompileCache::default();
    let warm = catalog(&warm_cache, &defs);
    let objects = render_all(&comps, &warm, &ctx);
    assert!(objects >= 20, "only {objects} objects");

    let mut g = c.benchmark_group("app 10 components x 3 traits");
    g.sample_size(20);
    g.bench_function("cold (compile definitions + render)", |b| {
        b.iter(|| {
            let cache = CompileCache::default();
            let cat = catalog(&cache, &defs);
            black_box(render_all(&comps, &cat, &ctx))
        })
    });
    g.bench_function("warm (render only)", |b| {
        b.iter(|| black_box(render_all(&comps, &warm, &ctx)))
    });
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
