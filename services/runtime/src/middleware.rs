//! What every tower middleware of the runtime repeats, written once: a service type holding the
//! inner service (and, for a layer with settings, a clone of the layer), and the `Layer` impl
//! that makes it. Each middleware writes only its `Service` impl.

/// `middleware!(XLayer => XService)`: `XService<S>` holds `inner: S` and `layer: XLayer`.
/// `middleware!(XLayer => XService, stateless)`: `XService<S>` holds only `inner: S`.
macro_rules! middleware {
    ($layer:ident => $service:ident) => {
        #[derive(Clone)]
        pub struct $service<S> {
            inner: S,
            layer: $layer,
        }

        impl<S> tower_layer::Layer<S> for $layer {
            type Service = $service<S>;

            fn layer(&self, inner: S) -> Self::Service {
                $service {
                    inner,
                    layer: self.clone(),
                }
            }
        }
    };
    ($layer:ident => $service:ident, stateless) => {
        #[derive(Debug, Clone)]
        pub struct $service<S> {
            inner: S,
        }

        impl<S> tower_layer::Layer<S> for $layer {
            type Service = $service<S>;

            fn layer(&self, inner: S) -> Self::Service {
                $service { inner }
            }
        }
    };
}
