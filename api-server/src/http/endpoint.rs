//! One declaration per route: its method, path template, handler, OpenAPI entry and metric
//! label all come from the `#[utoipa::path]` on the handler and its one `Endpoint` entry, so
//! they cannot drift apart.

use super::route_table::{Reach, Template};
use std::sync::Arc;
use utoipa::openapi::path::{HttpMethod, Operation};
use utoipa::openapi::{RefOr, schema::Schema};
use warp::filters::BoxedFilter;
use warp::http::Method;
use warp::path::FullPath;
use warp::reply::Response;
use warp::{Filter, Rejection};

/// `serve!(get_token, at.one(), caller())`: the path's values, then each filter's, handed to
/// the handler, whose `Result` becomes the answer.
#[macro_export]
macro_rules! serve {
    ($handler:expr, $at:expr $(, $filter:expr)* $(,)?) => {
        ::warp::Filter::boxed(::warp::Filter::map(
            ::warp::Filter::then($at$(.and($filter))*, $handler),
            $crate::http::reply::respond,
        ))
    };
}

/// The OpenAPI entry of an operation, with the schemas it references.
pub struct Documented {
    pub methods: Vec<HttpMethod>,
    pub operation: Operation,
    pub schemas: Vec<(String, RefOr<Schema>)>,
}

pub struct Endpoint {
    pub template: Template,
    /// `None`: any method (forward-auth, which gateways call with the client's method).
    pub methods: Option<Vec<Method>>,
    pub documented: Option<Documented>,
    pub filter: BoxedFilter<(Response,)>,
}

/// A matched path's `{…}` values, for the handler to take: the endpoint's template and
/// methods, checked by one filter.
pub struct At {
    template: Arc<Template>,
    methods: Option<BoxedFilter<()>>,
}

impl At {
    /// The values, whatever their number.
    pub fn filter(self) -> BoxedFilter<(Vec<String>,)> {
        self.matched().boxed()
    }

    // Unboxed, so each endpoint costs one boxed filter per request that tries it.
    fn matched(
        self,
    ) -> impl Filter<Extract = (Vec<String>,), Error = Rejection> + Clone + Send + Sync + 'static
    {
        let template = self.template;
        let methods = self.methods.unwrap_or_else(|| warp::any().boxed());
        warp::path::full()
            .and_then(move |path: FullPath| {
                let matched = template
                    .captures(path.as_str())
                    .map(|captures| captures.params)
                    .ok_or_else(warp::reject::not_found);
                std::future::ready(matched)
            })
            .and(methods)
    }

    /// A path with no `{…}` segment.
    pub fn plain(self) -> BoxedFilter<()> {
        self.matched()
            .map(|_: Vec<String>| ())
            .untuple_one()
            .boxed()
    }

    /// A path with one `{…}` segment.
    pub fn one(self) -> BoxedFilter<(String,)> {
        self.matched()
            .map(|mut params: Vec<String>| params.swap_remove(0))
            .boxed()
    }

    /// A path with two `{…}` segments.
    pub fn two(self) -> BoxedFilter<(String, String)> {
        self.matched()
            .map(|params: Vec<String>| {
                let mut params = params.into_iter();
                (
                    params.next().expect("two segments"),
                    params.next().expect("two segments"),
                )
            })
            .untuple_one()
            .boxed()
    }
}

impl Endpoint {
    /// The operation `P` (the `__path_…` type `#[utoipa::path]` generates), served at its
    /// path and methods by `handler`.
    pub fn api<P>(reach: Reach, handler: impl FnOnce(At) -> BoxedFilter<(Response,)>) -> Endpoint
    where
        P: utoipa::Path + utoipa::__dev::SchemaReferences,
    {
        let methods = P::methods().iter().map(method_of).collect();
        Endpoint::documented::<P>(reach, Some(methods), handler)
    }

    /// Like `api`, for an operation served whatever the method (its document lists the usual
    /// ones).
    pub fn api_any_method<P>(
        reach: Reach,
        handler: impl FnOnce(At) -> BoxedFilter<(Response,)>,
    ) -> Endpoint
    where
        P: utoipa::Path + utoipa::__dev::SchemaReferences,
    {
        Endpoint::documented::<P>(reach, None, handler)
    }

    // `SchemaReferences` is how utoipa-axum's router collects an operation's schemas too.
    fn documented<P>(
        reach: Reach,
        methods: Option<Vec<Method>>,
        handler: impl FnOnce(At) -> BoxedFilter<(Response,)>,
    ) -> Endpoint
    where
        P: utoipa::Path + utoipa::__dev::SchemaReferences,
    {
        let mut schemas = Vec::new();
        P::schemas(&mut schemas);
        Endpoint::serve(
            Template::new(&P::path(), reach),
            methods,
            Some(Documented {
                operation: P::operation(),
                schemas,
                methods: P::methods(),
            }),
            handler,
        )
    }

    /// A route outside the API document: probes, the document itself, the dashboard.
    pub fn page(
        template: &str,
        methods: Option<Vec<Method>>,
        handler: impl FnOnce(At) -> BoxedFilter<(Response,)>,
    ) -> Endpoint {
        Endpoint::serve(Template::new(template, Reach::Own), methods, None, handler)
    }

    fn serve(
        template: Template,
        methods: Option<Vec<Method>>,
        documented: Option<Documented>,
        handler: impl FnOnce(At) -> BoxedFilter<(Response,)>,
    ) -> Endpoint {
        let at = At {
            template: Arc::new(template.clone()),
            methods: methods.as_deref().map(any_of),
        };
        Endpoint {
            template,
            filter: handler(at),
            methods,
            documented,
        }
    }
}

/// Passes one of `methods`; any other is refused with warp's 405.
fn any_of(methods: &[Method]) -> BoxedFilter<()> {
    let mut filters = methods.iter().map(method_filter);
    let first = filters.next().expect("an endpoint has a method");
    filters.fold(first, |all, next| all.or(next).unify().boxed())
}

fn method_filter(method: &Method) -> BoxedFilter<()> {
    match *method {
        Method::GET => warp::get().boxed(),
        Method::POST => warp::post().boxed(),
        Method::PUT => warp::put().boxed(),
        Method::PATCH => warp::patch().boxed(),
        Method::DELETE => warp::delete().boxed(),
        ref other => panic!("no endpoint is served with {other}"),
    }
}

fn method_of(method: &HttpMethod) -> Method {
    match method {
        HttpMethod::Get => Method::GET,
        HttpMethod::Post => Method::POST,
        HttpMethod::Put => Method::PUT,
        HttpMethod::Patch => Method::PATCH,
        HttpMethod::Delete => Method::DELETE,
        HttpMethod::Head => Method::HEAD,
        HttpMethod::Options => Method::OPTIONS,
        HttpMethod::Trace => Method::TRACE,
    }
}
