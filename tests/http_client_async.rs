//! The HTTP client from async code (`AsyncHttpClient`) over real loopback sockets, against
//! torsion's own `HttpServer` on the same reactor: a response, a 404, a refused connection,
//! a `LocalHandle::timeout` that gives up on a request (and closes its connection), and
//! several requests in flight at once (joined in one task, or spawned as tasks), and a request
//! dropped before it left.

mod common;

use std::cell::{Cell, RefCell};
use std::future::{poll_fn, Future};
use std::io::Read;
use std::net::SocketAddr;
use std::pin::Pin;
use std::rc::Rc;
use std::sync::mpsc;
use std::task::{Context, Poll, Waker};
use std::time::Duration;

use common::scripted::{read_request, Scripted};
use common::*;
use torsion::protocols::http::client::{AsyncHttpClient, ClientError};
use torsion::protocols::http::server::{HttpServer, Request, Responder, Router};
use torsion::protocols::http::{HeaderMap, StatusCode};
use torsion::task::{Elapsed, JoinHandle};
use torsion::{ConnectError, Reactor};

/// Turns `reactor` until `handle`'s task has ended, and returns its output.
fn finish<T>(reactor: &mut Reactor, mut handle: JoinHandle<T>) -> T {
    run_until(reactor, "the task to end", || handle.is_finished());
    let mut cx = Context::from_waker(Waker::noop());
    match Pin::new(&mut handle).poll(&mut cx) {
        Poll::Ready(output) => output.expect("the task ran to its end"),
        Poll::Pending => panic!("finished but pending"),
    }
}

/// Awaits every future at once, in one task, and gives their outputs in order.
async fn join_all<F: Future>(futures: Vec<F>) -> Vec<F::Output> {
    let mut futures: Vec<_> = futures.into_iter().map(Box::pin).collect();
    let mut outputs: Vec<Option<F::Output>> = futures.iter().map(|_| None).collect();
    poll_fn(move |cx| {
        for (future, output) in futures.iter_mut().zip(outputs.iter_mut()) {
            if output.is_none() {
                if let Poll::Ready(value) = future.as_mut().poll(cx) {
                    *output = Some(value);
                }
            }
        }
        if outputs.iter().all(Option::is_some) {
            Poll::Ready(outputs.iter_mut().map(|o| o.take().unwrap()).collect())
        } else {
            Poll::Pending
        }
    })
    .await
}

/// A server on `reactor`: `/hello` answers at once; `/gather` answers only once three requests are there, all
/// at once, so only requests in flight together get answers.
fn serve(reactor: &mut Reactor) -> SocketAddr {
    let gathered = Rc::new(RefCell::new(Vec::new()));
    let router = Router::new()
        .get("/hello", |_: Request, res: Responder, r: &mut Reactor| {
            res.respond(r, StatusCode::OK, &HeaderMap::new(), "Hello, World!")
        })
        .get(
            "/gather",
            move |_: Request, res: Responder, r: &mut Reactor| {
                let mut waiting = gathered.borrow_mut();
                waiting.push(res);
                if waiting.len() == 3 {
                    for (n, res) in waiting.drain(..).enumerate() {
                        res.respond(r, StatusCode::OK, &HeaderMap::new(), format!("answer {n}"));
                    }
                }
            },
        );
    let port = reactor
        .listen_tcp(any_loopback_port(), HttpServer::new(router))
        .unwrap();
    port.local_addr()
}

#[test]
fn get_awaits_the_response_with_its_whole_body() {
    init_logging();
    let mut reactor = Reactor::new().unwrap();
    let addr = serve(&mut reactor);
    let client = AsyncHttpClient::new(&reactor.local_handle());
    let task = reactor.spawn_task(async move { client.get(format!("http://{addr}/hello")).await });

    let response = finish(&mut reactor, task).expect("a response");
    assert_eq!(response.status, StatusCode::OK);
    assert_eq!(response.body, "Hello, World!");
    assert_eq!(response.url, format!("http://{addr}/hello"));
}

#[test]
fn a_404_is_a_response_not_an_error() {
    init_logging();
    let mut reactor = Reactor::new().unwrap();
    let addr = serve(&mut reactor);
    let client = AsyncHttpClient::new(&reactor.local_handle());
    let task = reactor.spawn_task(async move { client.get(format!("http://{addr}/nope")).await });

    let response = finish(&mut reactor, task).expect("a response");
    assert_eq!(response.status, StatusCode::NOT_FOUND);
}

#[test]
fn a_refused_connection_is_a_connect_error() {
    init_logging();
    let mut reactor = Reactor::new().unwrap();
    let addr = closed_loopback_port();
    let client = AsyncHttpClient::new(&reactor.local_handle());
    let task = reactor.spawn_task(async move { client.get(format!("http://{addr}/")).await });

    match finish(&mut reactor, task) {
        Err(ClientError::Connect(ConnectError::Refused(_))) => {}
        other => panic!("expected a refused connection, got {other:?}"),
    }
}

#[test]
fn a_timeout_drops_the_request_and_closes_its_connection() {
    init_logging();
    let (closed, saw_close) = mpsc::channel();
    // Reads the request, never answers, and reports what the next read sees.
    let server = Scripted::start(move |accept| {
        let mut stream = accept();
        assert!(read_request(&mut stream).is_some(), "a request");
        let mut rest = [0u8; 64];
        closed.send(stream.read(&mut rest).ok()).unwrap();
    });
    let mut reactor = Reactor::new().unwrap();
    let local = reactor.local_handle();
    let client = AsyncHttpClient::new(&local);
    let pool = client.client().clone();
    let url = server.url("/never");
    let task = reactor.spawn_task(async move {
        local
            .timeout(Duration::from_millis(100), client.get(url))
            .await
    });

    assert!(matches!(finish(&mut reactor, task), Err(Elapsed)));
    run_until(&mut reactor, "the request's connection to close", || {
        pool.open_connections() == 0
    });
    let read = saw_close
        .recv_timeout(CLIENT_TIMEOUT)
        .expect("the server's read");
    assert_eq!(read, Some(0), "the server saw the connection close");
    server.thread.join().unwrap();
}

#[test]
fn requests_joined_in_one_task_are_in_flight_together() {
    init_logging();
    let mut reactor = Reactor::new().unwrap();
    let addr = serve(&mut reactor);
    let client = AsyncHttpClient::new(&reactor.local_handle());
    let task = reactor.spawn_task(async move {
        let requests = (0..3)
            .map(|_| client.get(format!("http://{addr}/gather")))
            .collect();
        join_all(requests).await
    });

    let bodies: Vec<_> = finish(&mut reactor, task)
        .into_iter()
        .map(|result| result.expect("a response").body)
        .collect();
    let mut bodies: Vec<_> = bodies.iter().map(|b| b.as_ref()).collect();
    bodies.sort();
    assert_eq!(bodies, [&b"answer 0"[..], b"answer 1", b"answer 2"]);
}

#[test]
fn requests_spawned_as_tasks_run_together_and_are_awaited_in_order() {
    init_logging();
    let mut reactor = Reactor::new().unwrap();
    let addr = serve(&mut reactor);
    let local = reactor.local_handle();
    let client = AsyncHttpClient::new(&local);
    let task = reactor.spawn_task(async move {
        let paths = ["/gather", "/hello", "/gather", "/nope", "/gather"];
        let handles: Vec<_> = paths
            .iter()
            .map(|path| local.spawn_task(client.get(format!("http://{addr}{path}"))))
            .collect();
        let mut statuses = Vec::new();
        for handle in handles {
            statuses.push(handle.await.unwrap().expect("a response").status.as_u16());
        }
        statuses
    });

    assert_eq!(finish(&mut reactor, task), [200, 200, 200, 404, 200]);
}

#[test]
fn a_future_dropped_before_the_request_left_sends_nothing() {
    init_logging();
    let mut reactor = Reactor::new().unwrap();
    let hits = Rc::new(Cell::new(0));
    let counted = hits.clone();
    let router = Router::new().get(
        "/count",
        move |_: Request, res: Responder, r: &mut Reactor| {
            counted.set(counted.get() + 1);
            res.respond(
                r,
                StatusCode::OK,
                &HeaderMap::new(),
                counted.get().to_string(),
            )
        },
    );
    let port = reactor
        .listen_tcp(any_loopback_port(), HttpServer::new(router))
        .unwrap();
    let url = format!("http://{}/count", port.local_addr());
    let client = AsyncHttpClient::new(&reactor.local_handle());
    let task = reactor.spawn_task(async move {
        // Polled once (the request is handed to the reactor), then dropped in the same poll.
        let mut dropped = Box::pin(client.get(url.clone()));
        poll_fn(|cx| {
            assert!(dropped.as_mut().poll(cx).is_pending());
            Poll::Ready(())
        })
        .await;
        drop(dropped);
        client.get(url).await
    });

    let response = finish(&mut reactor, task).expect("a response");
    assert_eq!(
        response.body, "1",
        "the dropped request never reached the server"
    );
    assert_eq!(hits.get(), 1);
}
