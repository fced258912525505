//! A TCP proxy whose link can be cut and restored: put it between a service
//! and RabbitMQ to simulate an outage without stopping the shared broker. Its
//! port is bound at once, so it also stands for a service that starts later
//! (`start_unrouted`, then `route_to`): no port is picked in advance for
//! another test to take.

use std::{
    net::SocketAddr,
    sync::{
        Arc, Mutex,
        atomic::{AtomicBool, Ordering},
    },
};

use tokio::{net::TcpListener, task::JoinHandle};

#[derive(Debug)]
pub struct TcpProxy {
    pub port: u16,
    open: Arc<AtomicBool>,
    target: Arc<Mutex<Option<SocketAddr>>>,
    links: Arc<Mutex<Vec<JoinHandle<()>>>>,
    accept: JoinHandle<()>,
}

impl TcpProxy {
    /// Listens on a random local port and forwards to `target`.
    pub async fn start(target: SocketAddr) -> anyhow::Result<TcpProxy> {
        let proxy = Self::start_unrouted().await?;
        proxy.route_to(target);
        Ok(proxy)
    }

    /// Listens on a random local port and closes every connection until
    /// [`TcpProxy::route_to`] says where to forward.
    pub async fn start_unrouted() -> anyhow::Result<TcpProxy> {
        let listener = TcpListener::bind("127.0.0.1:0").await?;
        let port = listener.local_addr()?.port();
        let open = Arc::new(AtomicBool::new(true));
        let target: Arc<Mutex<Option<SocketAddr>>> = Arc::default();
        let links: Arc<Mutex<Vec<JoinHandle<()>>>> = Arc::default();
        let accept = {
            let (open, links, target) = (open.clone(), links.clone(), target.clone());
            tokio::spawn(async move {
                while let Ok((mut inbound, _)) = listener.accept().await {
                    let routed = *target.lock().unwrap_or_else(|p| p.into_inner());
                    let Some(target) = routed.filter(|_| open.load(Ordering::SeqCst)) else {
                        drop(inbound);
                        continue;
                    };
                    let link = tokio::spawn(async move {
                        if let Ok(mut outbound) = tokio::net::TcpStream::connect(target).await {
                            let _ =
                                tokio::io::copy_bidirectional(&mut inbound, &mut outbound).await;
                        }
                    });
                    links.lock().unwrap_or_else(|p| p.into_inner()).push(link);
                }
            })
        };
        Ok(TcpProxy {
            port,
            open,
            target,
            links,
            accept,
        })
    }

    /// Forwards new connections to `target`.
    pub fn route_to(&self, target: SocketAddr) {
        *self.target.lock().unwrap_or_else(|p| p.into_inner()) = Some(target);
    }

    /// Drops every open connection and refuses new ones.
    pub fn cut(&self) {
        self.open.store(false, Ordering::SeqCst);
        for link in self
            .links
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .drain(..)
        {
            link.abort();
        }
    }

    /// Accepts connections again.
    pub fn restore(&self) {
        self.open.store(true, Ordering::SeqCst);
    }
}

impl Drop for TcpProxy {
    fn drop(&mut self) {
        self.cut();
        self.accept.abort();
    }
}
