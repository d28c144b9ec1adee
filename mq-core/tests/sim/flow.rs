//! Moving bytes and time: draining every endpoint, delivering chunks in
//! flight, one step of the virtual clock with its random faults.

use super::*;

impl Sim {
    /// Moves everything every endpoint wants to do, until nothing moves.
    pub(super) fn drain(&mut self) {
        let mut buf = vec![0u8; 8 * 1024];
        loop {
            let mut progress = false;
            // Broker outputs.
            while let Some(op) = self.broker.poll_store() {
                progress = true;
                let at = self.now + Duration::from_micros(self.rng.below(3_000));
                let at = self
                    .store
                    .volatile
                    .back()
                    .map_or(at, |(_, _, t)| at.max(*t));
                self.store
                    .volatile
                    .push_back((op.token, op.bytes().to_vec(), at));
            }
            while let Some(t) = self.broker.poll_transmit(self.now, &mut buf) {
                progress = true;
                let link = self
                    .links
                    .values()
                    .find(|l| l.conn == t.conn)
                    .map(|l| l.client);
                let Some(client) = link else { continue };
                let id = self.clients[client].link.expect("linked client");
                self.send_chunks(id, false, &buf[..t.len]);
            }
            while let Some(event) = self.broker.poll_event() {
                progress = true;
                // Held-back input: the pipes offer what is left at every step.
                let BrokerEvent::Close(conn) = event else {
                    continue;
                };
                if let Some(id) = self
                    .links
                    .iter()
                    .find(|(_, l)| l.conn == conn)
                    .map(|(i, _)| *i)
                {
                    self.drop_link(id);
                } else {
                    self.broker.handle_closed(conn, self.now);
                }
            }
            // Client outputs.
            for i in 0..self.clients.len() {
                while let Some(n) = self.clients[i].session.poll_transmit(self.now, &mut buf) {
                    progress = true;
                    if let Some(id) = self.clients[i].link {
                        self.send_chunks(id, true, &buf[..n]);
                    }
                }
                while let Some(ev) = self.clients[i]
                    .session
                    .poll_event()
                    .map(|e| Happened::from_event(i, e))
                {
                    progress = true;
                    self.on_client_event(i, ev);
                }
            }
            self.broker
                .check_invariants()
                .unwrap_or_else(|e| panic!("broker invariant: {e}"));
            if !progress {
                break;
            }
        }
    }

    pub(super) fn on_client_event(&mut self, i: usize, ev: Happened) {
        let now = self.now;
        match ev {
            Happened::Connect => {
                // A serial line is always there: a connection is just a Hello.
                if self.clients[i].serial && self.clients[i].link.is_some() {
                    self.clients[i].session.handle_connected(now);
                    return;
                }
                let serial = self.clients[i].serial;
                let framing = if serial {
                    Framing::Serial
                } else {
                    Framing::Stream
                };
                let conn = self.broker.accept(now, framing).expect("accept");
                let id = self.next_link;
                self.next_link += 1;
                self.links.insert(
                    id,
                    Link {
                        client: i,
                        conn,
                        serial,
                        up: Pipe::default(),
                        down: Pipe::default(),
                        device: serial.then(|| Device {
                            decoder: SerialDecoder::new(vec![0u8; 8 * 1024]),
                            refused: false,
                        }),
                    },
                );
                let c = &mut self.clients[i];
                c.link = Some(id);
                c.session.handle_connected(now);
            }
            Happened::Disconnected(reason) => {
                self.log(|| format!("client {i} disconnected: {reason}"));
                if self.clients[i].serial {
                    // The line stays; the next connection starts with a Hello.
                    self.clients[i].session.handle_disconnected(now);
                } else if let Some(id) = self.clients[i].link {
                    self.drop_link(id);
                }
            }
            Happened::Published(id) => {
                self.log(|| format!("client {i}: publish {id} acked"));
                let c = &mut self.clients[i];
                if let Some((p, n, _)) = c.publish_ids.remove(&id) {
                    c.acked.insert((p, n));
                }
            }
            Happened::Message {
                topic,
                publisher,
                n,
                ack,
            } => {
                self.log(|| format!("client {i}: got {publisher}/{n} on {topic} (ack {ack:?})"));
                self.clients[i].seen.push((topic, publisher, n));
                let Some(id) = ack else { return };
                let deadline = self.broker_cfg.ack_timeout;
                let later = &mut self.clients[i].later;
                if let Some((at, late)) = later.put_off(&mut self.rng, deadline, now, id) {
                    self.late_acks += u32::from(late);
                    self.log(|| format!("client {i}: acks {id:?} at {}", at.as_micros()));
                    return;
                }
                // A stale id (the connection dropped meanwhile) is fine: the
                // broker redelivers and the session suppresses the copy.
                let _ = self.clients[i].session.ack(id);
            }
            Happened::Subscribed => {
                self.log(|| format!("client {i}: subscribed"));
                self.clients[i].subscribed = true;
            }
            Happened::Other(what) => self.log(|| format!("client {i}: {what}")),
        }
    }

    pub(super) fn send_chunks(&mut self, link: usize, up: bool, bytes: &[u8]) {
        let mut at = self.now + self.latency();
        let mut rest = bytes;
        while !rest.is_empty() {
            let n = (1 + self.rng.below(rest.len() as u64 * 2) as usize).min(rest.len());
            let Some(l) = self.links.get_mut(&link) else {
                return;
            };
            let pipe = if up { &mut l.up } else { &mut l.down };
            // In order: never before the previous chunk.
            if let Some((last, _)) = pipe.chunks.back() {
                at = at.max(*last);
            }
            pipe.chunks.push_back((at, rest[..n].to_vec()));
            rest = &rest[n..];
        }
    }

    pub(super) fn next_event(&self) -> Option<Instant> {
        let mut t: Option<Instant> = None;
        let mut min = |x: Option<Instant>| {
            if let Some(x) = x {
                t = Some(t.map_or(x, |t| t.min(x)));
            }
        };
        min(self.broker.poll_timeout());
        for c in &self.clients {
            min(c.session.poll_timeout());
            min(c.later.next());
        }
        for l in self.links.values() {
            min(l.up.chunks.front().map(|c| c.0));
            min(l.down.chunks.front().map(|c| c.0));
        }
        min(self.store.volatile.front().map(|v| v.2));
        t
    }

    pub(super) fn step(&mut self) {
        let next = self
            .next_event()
            .unwrap_or(self.now + Duration::from_millis(1));
        // Small steps keep publishing and faults interleaved with everything else.
        let cap = self.now + Duration::from_micros(200 + self.rng.below(800));
        self.now = self.now.max(next.min(cap));
        let now = self.now;

        // The store makes records durable in order.
        let mut upto = None;
        while self.store.volatile.front().is_some_and(|v| v.2 <= now) {
            let (token, bytes, _) = self.store.volatile.pop_front().unwrap();
            self.store.durable.push(bytes);
            upto = Some(token);
        }
        if let Some(t) = upto {
            self.broker.handle_persisted(t, now);
        }

        // Network deliveries.
        let ids: Vec<usize> = self.links.keys().copied().collect();
        for id in ids {
            for up in [true, false] {
                let Some(l) = self.links.get_mut(&id) else {
                    continue;
                };
                let pipe = if up { &mut l.up } else { &mut l.down };
                while pipe.chunks.front().is_some_and(|c| c.0 <= now) {
                    let (_, chunk) = pipe.chunks.pop_front().unwrap();
                    pipe.rx.extend_from_slice(&chunk);
                }
                if up {
                    let used = self.broker.handle_input(l.conn, now, &l.up.rx);
                    l.up.rx.drain(..used);
                } else {
                    let session = &mut self.clients[l.client].session;
                    let used = match l.device.as_mut() {
                        Some(device) => device.feed(session, now, &l.down.rx),
                        None => session.handle_input(now, &l.down.rx),
                    };
                    l.down.rx.drain(..used);
                }
            }
        }

        self.broker.handle_timeout(now);
        for c in &mut self.clients {
            c.session.handle_timeout(now);
            // The slow application's acks that are due.
            for id in c.later.due(now) {
                let _ = c.session.ack(id);
            }
        }

        // Workload: once every subscription is in place (messages published
        // before a `Start::New` subscription exists are not its to receive).
        let ready = self
            .clients
            .iter()
            .all(|c| c.subscribed || matches!(c.role, Role::Publisher { .. }));
        for i in 0..self.clients.len() {
            if !ready {
                break;
            }
            let c = &mut self.clients[i];
            let Role::Publisher { id } = c.role else {
                continue;
            };
            if c.next_msg > c.to_publish || !self.rng.chance(50_000) {
                continue;
            }
            let topic = TOPICS[self.rng.below(TOPICS.len() as u64) as usize];
            let n = c.next_msg;
            let opts = PublishOptions {
                qos: QoS::AtLeastOnce,
                meta: mq_core::wire::Meta {
                    priority: priority_of(n),
                    ..mq_core::wire::Meta::default()
                },
            };
            if let Ok(pid) = c.session.publish(now, topic, &payload(id, n), &opts) {
                c.publish_ids.insert(pid.0, (id, n, topic));
                c.next_msg += 1;
            }
        }

        // Faults.
        if self.faults {
            if self.rng.chance(4_000) && !self.links.is_empty() {
                let k = self.rng.below(self.links.len() as u64) as usize;
                let id = *self.links.keys().nth(k).unwrap();
                if self.links[&id].serial {
                    self.damage(id);
                } else {
                    self.drop_link(id);
                }
            }
            if self.rng.chance(400) {
                self.restart_broker();
            }
            if self.rng.chance(600) {
                self.compact();
            }
        }
        self.drain();
    }
}
