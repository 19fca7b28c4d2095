//! Endpoints on the reactor: listening on a [`ServerEndpoint`] and connecting to a
//! [`ClientEndpoint`], each dispatching to the listen or connect of its kind, with the files
//! an endpoint names (TLS certificates, keys, trusted roots) loaded here.

use std::io;
use std::net::SocketAddr;
use std::sync::Arc;

use rustls::ServerConfig;

use crate::endpoint::{ClientEndpoint, EndpointError, ServerEndpoint};
use crate::listeners::{bind_listener_with, ListenOptions, ListenSocket};
use crate::proxy::ProxiedFactory;
use crate::tls::{self, ClientAuth, Identity, ServerTls, TlsOptions};
use crate::{ClientFactory, ConnectOptions, Connector, Factory, ListeningPort, Reactor};
use crate::{UnixAddress, UnixListenOptions};

impl Reactor {
    /// Listens on `endpoint`, an endpoint string (`"tcp:8000:interface=127.0.0.1"`,
    /// `"127.0.0.1:8000"`, `"tls:8443:privateKey=key.pem:certKey=cert.pem"`,
    /// `"unix:/run/app.sock"`; see [`ServerEndpoint`]) or a parsed [`ServerEndpoint`], and
    /// builds a protocol with `factory` for each connection accepted (Twisted's
    /// `serverFromString(reactor, description).listen(factory)`).
    ///
    /// TCP listens as [`listen_tcp`](Reactor::listen_tcp), with the endpoint's backlog; TLS
    /// loads the PEM certificate chain and key, then listens as
    /// [`listen_tls`](Reactor::listen_tls); `haproxy:` wraps `factory` in a
    /// [`ProxiedFactory`] and listens on the endpoint inside. Fails, without listening, on a bad string
    /// ([`EndpointError::Parse`]), unreadable or unusable TLS files
    /// ([`EndpointError::Tls`]), or a socket that cannot listen ([`EndpointError::Io`]).
    ///
    /// ```
    /// # use torsion_reactor::{Context, Protocol, Reactor};
    /// # struct Echo;
    /// # impl Protocol for Echo {
    /// #     fn data_received(&mut self, cx: &mut Context<'_>, data: &[u8]) {
    /// #         cx.write(data);
    /// #     }
    /// # }
    /// # fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// let mut reactor = Reactor::new()?;
    /// let port = reactor.listen("tcp:0:interface=127.0.0.1", || Echo)?;
    /// assert!(port.local_addr().ip().is_loopback());
    /// # Ok(()) }
    /// ```
    pub fn listen<F, E>(&mut self, endpoint: E, factory: F) -> Result<ListeningPort, EndpointError>
    where
        F: Factory,
        E: TryInto<ServerEndpoint>,
        EndpointError: From<E::Error>,
    {
        match endpoint.try_into()? {
            ServerEndpoint::Haproxy(inner) => {
                let described = format!("haproxy {inner}");
                self.listen_endpoint(*inner, ProxiedFactory::new(factory))
                    .map_err(|error| match error {
                        EndpointError::Io { error, .. } => EndpointError::Io {
                            endpoint: described,
                            error,
                        },
                        other => other,
                    })
            }
            endpoint => self.listen_endpoint(endpoint, factory),
        }
    }

    /// Listens on an endpoint that is not `haproxy:` (that one wraps the factory first).
    fn listen_endpoint<F: Factory>(
        &mut self,
        endpoint: ServerEndpoint,
        factory: F,
    ) -> Result<ListeningPort, EndpointError> {
        let described = endpoint.to_string();
        let io_error = |error| EndpointError::Io {
            endpoint: described.clone(),
            error,
        };
        match endpoint {
            ServerEndpoint::Tcp {
                addr,
                backlog,
                reuse_port: true,
            } => {
                let options = ListenOptions::new().with_backlog(backlog).reuse_port(true);
                let socket = bind_listener_with(addr, options).map_err(io_error)?;
                let addr = socket.local_addr().map_err(io_error)?;
                let socket = ListenSocket::Tcp(socket);
                let key = self
                    .listen_socket(socket, None, Box::new(factory), None)
                    .map_err(io_error)?;
                Ok(ListeningPort {
                    key,
                    addr: Some(addr),
                })
            }
            ServerEndpoint::Tcp { addr, backlog, .. } => self
                .listen_boxed(addr, backlog, Box::new(factory), None)
                .map_err(io_error),
            ServerEndpoint::Tls {
                addr,
                backlog,
                cert_chain,
                private_key,
            } => {
                let config = Identity::from_pem_files(cert_chain, private_key)
                    .and_then(|identity| tls::server_config(identity, ClientAuth::None))
                    .map_err(|error| EndpointError::Tls {
                        endpoint: described.clone(),
                        error,
                    })?;
                let options = TlsOptions::default();
                self.listen_tls_backlog(addr, backlog, config.into(), factory, options)
                    .map_err(io_error)
            }
            ServerEndpoint::Unix { name, mode } => self
                .listen_unix_endpoint(name, mode, factory)
                .map_err(io_error),
            ServerEndpoint::Systemd { domain, socket } => {
                let socket = crate::systemd::take(domain, &socket).map_err(io_error)?;
                let addr = match &socket {
                    ListenSocket::Tcp(listener) => Some(listener.local_addr().map_err(io_error)?),
                    ListenSocket::Unix(_) => None,
                };
                let key = self
                    .listen_socket(socket, None, Box::new(factory), None)
                    .map_err(io_error)?;
                Ok(ListeningPort { key, addr })
            }
            ServerEndpoint::Haproxy(_) => Err(io_error(io::Error::new(
                io::ErrorKind::InvalidInput,
                "haproxy: cannot wrap haproxy:",
            ))),
        }
    }

    /// Listens for TLS connections on `endpoint`'s address with `config` (and `options`, as
    /// [`listen_tls_with`](Reactor::listen_tls_with)): for a server that builds its own
    /// configuration (ALPN, client certificates, a certificate made at start-up) yet takes
    /// its address as an endpoint string. A `tcp:` endpoint's interface and backlog apply;
    /// a `tls:` endpoint's too, but its certificate files are not read (`config` is used:
    /// read them from [`ServerEndpoint::Tls`] to build it). A UNIX endpoint fails with
    /// `ErrorKind::Unsupported`.
    pub fn listen_tls_endpoint<F, E>(
        &mut self,
        endpoint: E,
        config: impl Into<Arc<ServerConfig>>,
        factory: F,
        options: TlsOptions,
    ) -> Result<ListeningPort, EndpointError>
    where
        F: Factory,
        E: TryInto<ServerEndpoint>,
        EndpointError: From<E::Error>,
    {
        let endpoint = endpoint.try_into()?;
        let described = endpoint.to_string();
        let (addr, backlog) = match endpoint {
            ServerEndpoint::Tcp { addr, backlog, .. }
            | ServerEndpoint::Tls { addr, backlog, .. } => (addr, backlog),
            ServerEndpoint::Unix { .. }
            | ServerEndpoint::Haproxy(_)
            | ServerEndpoint::Systemd { .. } => {
                let why = "TLS here takes a tcp: or tls: endpoint";
                return Err(EndpointError::Io {
                    endpoint: described,
                    error: io::Error::new(io::ErrorKind::Unsupported, why),
                });
            }
        };
        self.listen_tls_backlog(addr, backlog, config.into(), factory, options)
            .map_err(|error| EndpointError::Io {
                endpoint: described,
                error,
            })
    }

    fn listen_tls_backlog<F: Factory>(
        &mut self,
        addr: SocketAddr,
        backlog: Option<u32>,
        config: Arc<ServerConfig>,
        factory: F,
        options: TlsOptions,
    ) -> io::Result<ListeningPort> {
        let tls = ServerTls::new(config, options);
        self.listen_boxed(addr, backlog, Box::new(factory), Some(Box::new(tls)))
    }

    /// Listens on a UNIX socket endpoint ([`listen_unix`](Reactor::listen_unix)).
    fn listen_unix_endpoint<F: Factory>(
        &mut self,
        address: UnixAddress,
        mode: Option<u32>,
        factory: F,
    ) -> io::Result<ListeningPort> {
        let mut options = UnixListenOptions::new();
        if let Some(mode) = mode {
            options = options.mode(mode);
        }
        self.listen_unix(address, options, factory)
    }

    /// Connects `factory` to `endpoint`, an endpoint string (`"tcp:host=example.com:port=80"`,
    /// `"localhost:8000"`, `"tls:host=example.com:port=443"`, `"unix:path=/run/app.sock"`;
    /// see [`ClientEndpoint`]) or a parsed [`ClientEndpoint`] (Twisted's
    /// `clientFromString(reactor, description).connect(factory)`), with the default
    /// [`ConnectOptions`]; see [`connect_endpoint_with`](Reactor::connect_endpoint_with).
    pub fn connect_endpoint<F, E>(
        &mut self,
        endpoint: E,
        factory: F,
    ) -> Result<Connector, EndpointError>
    where
        F: ClientFactory,
        E: TryInto<ClientEndpoint>,
        EndpointError: From<E::Error>,
    {
        self.connect_endpoint_with(endpoint, factory, ConnectOptions::new())
    }

    /// Connects `factory` to `endpoint` as [`connect`](Reactor::connect) does, starting from
    /// `options`: the endpoint's `timeout` replaces theirs; a `tls:` endpoint adds TLS,
    /// trusting the CA certificates in its `trustRoots` file, else the system's roots, unless
    /// `options` already carry a TLS configuration (which then wins, e.g. one presenting a
    /// client certificate). A `tcp:` endpoint keeps whatever `options` say about TLS.
    ///
    /// Fails at once, without connecting, on a bad string ([`EndpointError::Parse`]) or
    /// trusted roots that cannot be loaded ([`EndpointError::Tls`]); a connection attempt
    /// that fails later is reported to the factory, as with `connect`.
    pub fn connect_endpoint_with<F, E>(
        &mut self,
        endpoint: E,
        factory: F,
        options: ConnectOptions,
    ) -> Result<Connector, EndpointError>
    where
        F: ClientFactory,
        E: TryInto<ClientEndpoint>,
        EndpointError: From<E::Error>,
    {
        let endpoint = endpoint.try_into()?;
        let options = match endpoint.timeout() {
            Some(timeout) => options.timeout(timeout),
            None => options,
        };
        match endpoint {
            ClientEndpoint::Tcp { target, .. } => Ok(self.connect(target, factory, options)),
            ClientEndpoint::Tls {
                ref target,
                ref trust_roots,
                ..
            } => {
                let options = match options.tls {
                    Some(_) => options,
                    None => {
                        let roots = match trust_roots {
                            Some(path) => tls::roots_from_pem_file(path),
                            None => tls::system_roots(),
                        };
                        let config = roots.and_then(tls::client_config).map_err(|error| {
                            EndpointError::Tls {
                                endpoint: endpoint.to_string(),
                                error,
                            }
                        })?;
                        options.tls(config)
                    }
                };
                Ok(self.connect(target.clone(), factory, options))
            }
            ClientEndpoint::Unix { name, .. } => self
                .connect_unix_endpoint(name.clone(), factory, options)
                .map_err(|error| EndpointError::Io {
                    endpoint: format!("unix {name}"),
                    error,
                }),
        }
    }

    /// Connects to a UNIX socket endpoint (a [`Target::Unix`](crate::Target::Unix)).
    fn connect_unix_endpoint<F: ClientFactory>(
        &mut self,
        address: UnixAddress,
        factory: F,
        options: ConnectOptions,
    ) -> io::Result<Connector> {
        Ok(self.connect(crate::Target::Unix(address), factory, options))
    }
}
