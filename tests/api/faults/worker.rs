//! The worker half of faults under load: a real `dhara worker` killed with SIGKILL while it
//! holds jobs it has claimed and not yet handed to SMTP; another worker process sends each of
//! them once its lease has run out, and nothing twice. (Jobs it was handing to SMTP when it
//! died are recorded sent-unconfirmed, never resent: `emails::a_worker_killed_mid_batch_…`.)

use std::collections::{HashMap, HashSet};
use std::time::{Duration, Instant};

use futures_util::TryStreamExt;
use mongodb::bson::{doc, DateTime, Document};

use crate::emails::{received, reconcile_now, unarmed_due_reminders, until_all_sent, SHORT_LEASE};
use crate::helpers::*;
use crate::procs::{signal, worker_process};
use crate::smtp_server::SmtpServer;

/// Jobs left `sending` by workers that are gone: (job id, phase, lease end).
async fn held(jobs: &mongodb::Collection<Document>) -> Vec<(String, String, DateTime)> {
    let found: Vec<Document> = jobs
        .find(doc! { "state": "sending" })
        .await
        .unwrap()
        .try_collect()
        .await
        .unwrap();
    found
        .iter()
        .map(|j| {
            (
                j.get_str("_id").unwrap().to_owned(),
                j.get_str("phase").unwrap_or_default().to_owned(),
                *j.get_datetime("leaseUntil").unwrap(),
            )
        })
        .collect()
}

#[tokio::test]
async fn a_worker_killed_holding_claimed_jobs_has_them_sent_once_by_another_after_the_lease() {
    const JOBS: usize = 120;
    let smtp = SmtpServer::start().await;
    // The in-process instance sends nothing.
    let app = spawn_app_with(&[("DHARA_WORKER__SEND_EMAILS", "false")]).await;
    let t = therapist(&app).await;
    unarmed_due_reminders(&app, &t, JOBS).await;
    let jobs = app.db.collection::<Document>("email_jobs");
    let database = app.config.mongodb.database.clone();
    let mut env = SHORT_LEASE.to_vec();
    env.push(("DHARA_EMAILS__CONCURRENCY", "8"));
    // Every job armed before a worker starts (the reconciler run here, as every worker runs
    // it): its lanes are all busy when it is killed, where jobs armed one by one while it
    // runs would leave it idle between them.
    let mut armed = 0;
    while armed < JOBS {
        let n = reconcile_now(&app).await.bookings;
        assert!(n > 0, "the reconciler armed {armed} of {JOBS}");
        armed += n;
    }
    assert_eq!(
        jobs.count_documents(doc! { "kind": "reminder", "state": "scheduled" })
            .await
            .unwrap(),
        JOBS as u64
    );

    // Kill a sending worker at a random moment; its lanes are claiming, checking, handing to
    // SMTP or recording. Again, until a kill has caught it holding jobs not yet handed over.
    let (mut claimed, mut submitting) = (HashMap::new(), HashSet::new());
    let mut rounds = 0;
    for _ in 0..20 {
        rounds += 1;
        let before = received(&smtp, "reminder").len();
        assert!(before < JOBS, "every job sent before a kill caught one claimed");
        let mut worker = worker_process(&database, &smtp.url(), &env);
        let deadline = Instant::now() + Duration::from_secs(60);
        while received(&smtp, "reminder").len() < before + 3 {
            assert!(Instant::now() < deadline, "the worker sent nothing");
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        signal(&worker, "-KILL").await;
        worker.wait().await.unwrap();
        // No worker runs now: what the dead ones held stays as it is until their leases end.
        for (id, phase, lease) in held(&jobs).await {
            match phase.as_str() {
                "claimed" => {
                    claimed.entry(id).or_insert(lease);
                }
                _ => {
                    submitting.insert(id);
                }
            }
        }
        if !claimed.is_empty() {
            break;
        }
    }
    assert!(
        !claimed.is_empty(),
        "no kill caught a claimed job in twenty rounds"
    );

    // The worker started again takes them over once their leases expire, and sends the rest.
    let _again = worker_process(&database, &smtp.url(), &env);
    until_all_sent(&app, "reminder", JOBS as u64, Duration::from_secs(120)).await;
    let counts = smtp.count_by_message_id();
    let twice: Vec<_> = counts.iter().filter(|(_, n)| **n > 1).collect();
    assert!(twice.is_empty(), "delivered twice: {twice:?}");
    let delivered = |job: &str| {
        let local = job.replace(':', ".");
        counts
            .keys()
            .filter(|m| m.split('@').next() == Some(local.as_str()))
            .count()
    };
    for (id, lease) in &claimed {
        let job = jobs.find_one(doc! { "_id": id }).await.unwrap().unwrap();
        assert_eq!(
            delivered(id),
            1,
            "{id}: held claimed by a killed worker, delivered once"
        );
        assert_ne!(job.get_bool("unconfirmed").ok(), Some(true), "{id}: {job}");
        let sent = *job.get_datetime("sentAt").unwrap();
        assert!(
            sent > *lease,
            "{id}: sent after its lease ran out ({sent} vs {lease})"
        );
        let attempts = job.get("attempts").and_then(dhara::db::decode::as_i64);
        assert!(attempts >= Some(2), "{id}: claimed again: {job}");
    }
    for id in &submitting {
        assert!(
            delivered(id) <= 1,
            "{id}: being handed to SMTP at the kill: not resent"
        );
    }
    eprintln!(
        "{rounds} killed workers held {} claimed and {} submitting jobs; all {JOBS} sent once",
        claimed.len(),
        submitting.len()
    );
}
