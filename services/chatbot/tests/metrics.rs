//! The metrics the dashboards rely on (docs/CONFIG.md): `aula_gemini_requests_total{outcome}`,
//! `aula_gemini_request_duration_seconds`, `aula_gemini_tokens_total{direction}`.

mod common;

use std::sync::{Arc, Mutex};

use common::*;
use metrics::{
    Counter, CounterFn, Gauge, Histogram, HistogramFn, Key, KeyName, Metadata, Recorder,
    SharedString, Unit,
};

/// Every recorded value as `name{label=value,...}` and the amount.
#[derive(Clone, Default)]
struct Sink(Arc<Mutex<Vec<(String, f64)>>>);

struct Handle {
    key: String,
    sink: Sink,
}

impl CounterFn for Handle {
    fn increment(&self, value: u64) {
        self.sink
            .0
            .lock()
            .unwrap()
            .push((self.key.clone(), value as f64));
    }
    fn absolute(&self, value: u64) {
        self.increment(value)
    }
}

impl HistogramFn for Handle {
    fn record(&self, value: f64) {
        self.sink.0.lock().unwrap().push((self.key.clone(), value));
    }
}

impl Sink {
    fn handle(&self, key: &Key) -> Arc<Handle> {
        let labels: Vec<String> = key
            .labels()
            .map(|l| format!("{}={}", l.key(), l.value()))
            .collect();
        Arc::new(Handle {
            key: format!("{}{{{}}}", key.name(), labels.join(",")),
            sink: self.clone(),
        })
    }

    fn sum(&self, key: &str) -> f64 {
        let values = self.0.lock().unwrap();
        values
            .iter()
            .filter(|(k, _)| k == key)
            .map(|(_, v)| v)
            .sum()
    }

    fn count(&self, key: &str) -> usize {
        let values = self.0.lock().unwrap();
        values.iter().filter(|(k, _)| k == key).count()
    }
}

impl Recorder for Sink {
    fn describe_counter(&self, _: KeyName, _: Option<Unit>, _: SharedString) {}
    fn describe_gauge(&self, _: KeyName, _: Option<Unit>, _: SharedString) {}
    fn describe_histogram(&self, _: KeyName, _: Option<Unit>, _: SharedString) {}
    fn register_counter(&self, key: &Key, _: &Metadata<'_>) -> Counter {
        Counter::from_arc(self.handle(key))
    }
    fn register_gauge(&self, _: &Key, _: &Metadata<'_>) -> Gauge {
        Gauge::noop()
    }
    fn register_histogram(&self, key: &Key, _: &Metadata<'_>) -> Histogram {
        Histogram::from_arc(self.handle(key))
    }
}

#[test]
fn requests_latency_and_tokens_are_counted() {
    let sink = Sink::default();
    // A local recorder covers this thread only: run everything on a current-thread runtime here.
    metrics::with_local_recorder(&sink, || {
        tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap()
            .block_on(async {
                let gemini = StandIn::start(ok("sim")).await;
                gemini.push([
                    error(429, "RESOURCE_EXHAUSTED", "q"),
                    error(429, "RESOURCE_EXHAUSTED", "q"),
                    error(429, "RESOURCE_EXHAUSTED", "q"),
                ]);
                let client = gemini.client();
                client.answer(&question(), None).await.unwrap_err();
                client.answer(&question(), None).await.unwrap();
                client.answer(&question(), None).await.unwrap();
            })
    });

    assert_eq!(sink.sum("aula_gemini_requests_total{outcome=quota}"), 1.0);
    assert_eq!(sink.sum("aula_gemini_requests_total{outcome=ok}"), 2.0);
    assert_eq!(sink.count("aula_gemini_request_duration_seconds{}"), 3);
    assert_eq!(sink.sum("aula_gemini_tokens_total{direction=input}"), 22.0);
    assert_eq!(sink.sum("aula_gemini_tokens_total{direction=output}"), 14.0);
}
