//! The generation every cached read asks Redis for is read in batches under load (the reads
//! that ask while one is in flight share the next round trip), and a write on another instance
//! is never read old while reads keep arriving. That no read joins a round trip that began
//! before it asked is proven on the batcher itself (`batch::tests`): over HTTP, the account
//! check before the generation read hides windows shorter than its own round trip (this test
//! catches a generation trusted for 200 ms, not one trusted for 20 ms).

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use futures_util::future::join_all;

use crate::cache::two_instances;
use crate::helpers::*;
use crate::ops::{moved, scrape};

const GENERATION_READS: &str = "cache_generation_reads_total";

#[tokio::test]
async fn generation_reads_are_shared_under_load_and_a_write_on_another_instance_is_never_read_old() {
    let (a, b) = two_instances().await;
    let me = therapist(&a).await;
    let list = "/api/clients?page=1&limit=10";
    let read = |app: &TestApp| {
        app.client
            .get(app.url(list))
            .header("Authorization", me.auth.clone())
            .send()
    };
    assert_eq!(read(&b).await.unwrap().status(), 200);

    // Many reads at once: far fewer generation round trips than reads.
    let n = 200;
    let before = scrape(&b).await;
    let answers = join_all((0..n).map(|_| read(&b))).await;
    let after = scrape(&b).await;
    assert!(answers.iter().all(|r| r.as_ref().unwrap().status() == 200));
    let reads = moved(&before, &after, GENERATION_READS, &[]);
    assert!(
        reads >= 1.0 && reads < n as f64 * 0.75,
        "{reads} generation reads for {n} cached reads"
    );

    // A write on A while reads keep arriving on B: every read sent to B after the write
    // answered sees it, in every round.
    for round in 1..=5 {
        let stop = Arc::new(AtomicBool::new(false));
        let load: Vec<_> = (0..16)
            .map(|_| {
                let (client, url, auth) = (b.client.clone(), b.url(list), me.auth.clone());
                let stop = stop.clone();
                tokio::spawn(async move {
                    let mut reads = 0;
                    while !stop.load(Ordering::Relaxed) {
                        let r = client.get(&url).header("Authorization", &auth).send().await;
                        assert_eq!(r.unwrap().status(), 200);
                        reads += 1;
                    }
                    reads
                })
            })
            .collect();
        new_client(&a, &me, &format!("Client {round}")).await;
        let after_write = join_all((0..40).map(|_| read(&b))).await;
        stop.store(true, Ordering::Relaxed);
        for task in load {
            assert!(task.await.unwrap() > 0, "round {round}: the load ran");
        }
        for r in after_write {
            let page = json_body(r.unwrap()).await;
            assert_eq!(
                page["pagination"]["totalItems"], round,
                "round {round}: a read sent after the write answered"
            );
        }
    }
}
