//! A node that restarts with its store lost (a memory store, a data dir
//! that is gone) numbers its messages from 1 again, while its peers still
//! remember the numbers of its old self: they must not take its new
//! messages for redeliveries of the old ones.

use super::*;

/// Steps the mesh (no faults) until publishing is done and nothing moves.
fn settle(sim: &mut Sim) {
    let deadline = sim.world.now + Duration::from_secs(60);
    while !(sim.publishing_done() && sim.world.is_quiet()) && sim.world.now < deadline {
        sim.step();
    }
    assert!(sim.publishing_done(), "publishing did not finish");
}

/// Node 0's publisher sends some messages and the mesh settles; node 0
/// loses its store and restarts; once every node knows every other's
/// interest again, it sends as many more. Every subscriber on the other
/// nodes gets every one of them, once.
#[test]
fn a_node_restarted_with_its_store_lost_is_not_taken_for_its_old_self() {
    const SEEDS: u64 = 8;
    for seed in 0..SEEDS {
        let mut sim = Sim::new(seed, std::env::var("MQ_SIM_SEED").is_ok());
        sim.faulty = false;
        // Node 0's publisher is its first client.
        assert_eq!(sim.apps[0].role, Role::Publisher(1));
        for a in &mut sim.apps {
            a.to_publish = 0;
        }
        sim.apps[0].to_publish = 12;
        settle(&mut sim);
        let before = sim.apps[0].acked.len();
        assert_eq!(before, 12, "seed {seed}: node 0's first messages");
        sim.world.restart_node_empty(0);
        for (i, a) in sim.apps.iter_mut().enumerate() {
            // Their sessions were in the store.
            a.broken |= sim.world.clients[i].node == 0;
        }
        // Publishing waits for the interest to be known everywhere again.
        sim.started = false;
        sim.apps[0].to_publish = 24;
        settle(&mut sim);
        assert_eq!(sim.apps[0].acked.len(), 24, "seed {seed}: all acked");
        sim.check();
    }
}
