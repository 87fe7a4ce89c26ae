//! The phone lifecycle, as scripted platform scenarios: each is a sequence of
//! the calls a platform makes (app state, network, runs, stops, task reports)
//! against the reference backend and the signature-checking store, with the
//! invariants checked at every step: nothing is sent before the network is
//! reported, the mode always follows the last transition, the verdicts, the
//! OS progress adds up, every part is stored once and nothing is lost.

mod common;

use common::transport::{execute, Act, TestTransport};
use common::*;
use s3bgu_core::phone::{AppState, Attention, BackgroundRun, RunKind, RunVerdict, StopCause};
use s3bgu_core::{
    ErrorCode, HandoffSettings, NetworkState, PartTransport, Selector, UploadInfo, UploadState,
    Uploader, UploaderOptions,
};
use s3bgu_testkit::Harness;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// The platform's side of a scenario: the engine of the current process,
/// the app state it reported, and its transport (iOS) if any.
struct Platform {
    dir: tempfile::TempDir,
    u: Uploader,
    seq: u64,
    state: Option<AppState>,
    runs: Vec<RunKind>,
    network: bool,
    transport: Option<Arc<TestTransport>>,
}

/// The mode the contract gives, written here independently of the engine.
fn expected_mode(
    state: Option<AppState>,
    runs: &[RunKind],
    network: bool,
    transport: bool,
) -> &'static str {
    let Some(state) = state else {
        return "unmanaged";
    };
    if !network {
        return "stopped";
    }
    let long = runs.iter().any(|k| {
        matches!(
            k,
            RunKind::UserInitiatedJob
                | RunKind::Job
                | RunKind::ForegroundService
                | RunKind::ContinuedProcessing
        )
    });
    match state {
        AppState::Foreground => "direct",
        AppState::Background | AppState::Suspending if long => "direct",
        _ if transport => "handoff",
        AppState::Background if !runs.is_empty() => "direct",
        _ => "stopped",
    }
}

fn open_cold(db: &Path) -> Uploader {
    let mut o = UploaderOptions::new(db);
    // A platform that reports its lifecycle opens the queue without starting it.
    o.start = false;
    Uploader::open(o).expect("open")
}

impl Platform {
    async fn new(h: &Harness, parts_in_flight: u32) -> Platform {
        let dir = tempfile::tempdir().unwrap();
        let u = open_cold(&dir.path().join("queue.db"));
        u.set_config(config_for(h, parts_in_flight)).await.unwrap();
        Platform {
            dir,
            u,
            seq: 0,
            state: None,
            runs: Vec::new(),
            network: false,
            transport: None,
        }
    }

    fn db(&self) -> PathBuf {
        self.dir.path().join("queue.db")
    }

    fn file(&self, name: &str, size: u64) -> PathBuf {
        write_file(self.dir.path(), name, size, size)
    }

    async fn add(&self, path: &Path) -> UploadInfo {
        add(&self.u, path, "t").await.expect("add_file")
    }

    /// A transition, numbered as a platform numbers them.
    async fn app(&mut self, state: AppState) {
        self.seq += 1;
        self.u.set_app_state(state, self.seq);
        self.state = Some(state);
        self.check_mode().await;
    }

    async fn network(&mut self) {
        self.u.set_network(NetworkState {
            online: true,
            metered: false,
        });
        self.network = true;
        self.check_mode().await;
    }

    /// The mode follows the last transition, whatever came before.
    async fn check_mode(&self) {
        let s = self.u.lifecycle_status().await.unwrap();
        let want = expected_mode(
            self.state,
            &self.runs,
            self.network,
            self.transport.is_some(),
        );
        assert_eq!(
            s.mode, want,
            "mode after {:?} with runs {:?}",
            self.state, self.runs
        );
    }

    fn attach(&mut self, window: u32) -> Arc<TestTransport> {
        let t = Arc::new(TestTransport::default());
        t.set_reporter(self.u.task_reporter());
        self.u.set_part_transport(
            Some(t.clone() as Arc<dyn PartTransport>),
            HandoffSettings {
                prehandoff_window: window,
                ..HandoffSettings::default()
            },
        );
        self.transport = Some(t.clone());
        t
    }

    /// The process dies (the engine stops at once; its queue stays) and
    /// the app is launched again: a fresh engine that knows nothing.
    async fn relaunch(&mut self) {
        self.u.close().await;
        self.u = open_cold(&self.db());
        self.seq = 0;
        self.state = None;
        self.runs.clear();
        self.network = false;
        self.transport = None;
    }

    async fn get(&self, id: i64) -> UploadInfo {
        upload_of(&self.u, id).await
    }

    async fn wait_for(
        &self,
        id: i64,
        what: &str,
        pred: impl Fn(&UploadInfo) -> bool,
    ) -> UploadInfo {
        wait_for_upload(&self.u, id, what, pred).await
    }

    /// Runs `run` and stops it with `cause` once upload `id` has `parts`
    /// parts done; returns what the run and the stop answered.
    async fn stop_after_parts(
        &mut self,
        run: BackgroundRun,
        id: i64,
        parts: u32,
        cause: StopCause,
    ) -> (RunVerdict, RunVerdict) {
        self.runs.push(run.kind);
        let u = &self.u;
        let stop = async {
            wait_for_upload(u, id, "parts done", |x| x.parts_done >= parts).await;
            u.stop_background_run(&run.id, cause).await.unwrap()
        };
        let (ran, stopped) = tokio::join!(u.run_background(run.clone()), stop);
        self.runs.clear();
        (ran.expect("run_background"), stopped)
    }

    /// A run to its verdict, bounded.
    async fn run(&mut self, id: &str, kind: RunKind, limit: Option<Duration>) -> RunVerdict {
        self.runs.push(kind);
        let v = tokio::time::timeout(
            Duration::from_secs(90),
            self.u.run_background(BackgroundRun {
                id: id.into(),
                kind,
                time_limit: limit,
            }),
        )
        .await
        .expect("a run returns within 90 s")
        .expect("run_background");
        self.runs.retain(|k| *k != kind);
        v
    }
}

/// A user-initiated job without a time limit.
fn job(id: &str) -> BackgroundRun {
    BackgroundRun {
        id: id.into(),
        kind: RunKind::UserInitiatedJob,
        time_limit: None,
    }
}

/// Part PUTs the store answered 2xx, by (multipart upload, part).
fn stored_parts(h: &Harness) -> BTreeMap<(String, u32), u32> {
    let mut m = BTreeMap::new();
    for r in h.stats.store_requests() {
        if let (Some(part), Some(status)) = (r.part, r.status) {
            if (200..300).contains(&status) {
                *m.entry(part).or_insert(0) += 1;
            }
        }
    }
    m
}

/// Every part of the upload stored exactly once.
fn assert_each_part_stored_once(h: &Harness, u: &UploadInfo) {
    let id = u.upload_id.as_deref().expect("multipart upload id");
    let stored = stored_parts(h);
    for n in 1..=u.parts_total {
        assert_eq!(
            stored.get(&(id.to_string(), n)).copied().unwrap_or(0),
            1,
            "2xx PUTs of part {n} of upload {}",
            u.id
        );
    }
}

/// The scenario's figures, for the record: part PUTs the store accepted,
/// tasks handed off, tasks taken back.
async fn figures(h: &Harness, p: &Platform, scenario: &str) {
    let stored: u32 = stored_parts(h).values().sum();
    let s = p.u.status().await.unwrap();
    let l = p.u.lifecycle_status().await.unwrap();
    eprintln!(
        "figures {scenario}: parts stored {stored}, part PUTs {}, tasks handed off {} (this process), taken back {}",
        h.stats.total_part_puts(),
        s.tasks_handed_off_total,
        l.reclaimed_total
    );
}

fn store_requests(h: &Harness) -> usize {
    h.stats.store_requests().len()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn opening_alone_never_sends_until_the_network_is_reported() {
    let h = harness().await;
    let mut p = Platform::new(&h, 2).await;
    let f = p.file("a.bin", 2 * PART + 17);
    let id = p.add(&f).await.id;
    assert_eq!(p.u.lifecycle_status().await.unwrap().mode, "unmanaged");
    p.app(AppState::Foreground).await;
    // On screen, but the network is not known: nothing goes out.
    tokio::time::sleep(Duration::from_millis(800)).await;
    assert_eq!(h.stats.backend_calls(s3bgu_testkit::Route::StartUpload), 0);
    assert_eq!(store_requests(&h), 0);
    assert_eq!(p.get(id).await.state, UploadState::Pending);
    p.network().await;
    let done = p
        .wait_for(id, "completed", |u| u.state == UploadState::Completed)
        .await;
    assert_object(&h, &done, &f);
    assert_each_part_stored_once(&h, &done);
    figures(&h, &p, "never before the network").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn transitions_delivered_late_or_twice_change_nothing() {
    let h = harness().await;
    let mut p = Platform::new(&h, 2).await;
    p.network().await;
    let f = p.file("a.bin", PART + 3);
    let id = p.add(&f).await.id;
    // Background (seq 2) arrives before the foreground it followed (seq 1).
    p.u.set_app_state(AppState::Background, 2);
    p.u.set_app_state(AppState::Foreground, 1);
    p.seq = 2;
    p.state = Some(AppState::Background);
    p.check_mode().await;
    // The same report twice.
    p.u.set_app_state(AppState::Background, 2);
    p.check_mode().await;
    let s = p.u.lifecycle_status().await.unwrap();
    assert_eq!(s.stale_transitions, 2);
    // Android in the background without a job: nothing is sent.
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(store_requests(&h), 0);
    assert_eq!(p.get(id).await.parts_done, 0);
    // The legacy calls cannot undo the reported facts.
    p.u.start().await.unwrap();
    p.u.set_handoff(true).await.unwrap();
    p.check_mode().await;
    assert!(!p.u.status().await.unwrap().running);
    p.app(AppState::Foreground).await;
    let done = p
        .wait_for(id, "completed", |u| u.state == UploadState::Completed)
        .await;
    assert_object(&h, &done, &f);
    assert_each_part_stored_once(&h, &done);
    figures(&h, &p, "late and repeated transitions").await;
}

/// Android: a job in a fresh process (launched by the scheduler, no UI)
/// that the system stops: work stops at a checkpoint, the verdict asks to
/// run again, nothing goes out until the next run, which finishes.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_android_job_in_a_fresh_process_stopped_by_the_system() {
    let h = harness().await;
    let mut p = Platform::new(&h, 1).await;
    let f = p.file("a.bin", 6 * PART + 5);
    let id = p.add(&f).await.id;
    p.relaunch().await;
    h.faults.delay_puts(Duration::from_millis(300));
    p.app(AppState::Background).await;
    p.network().await;
    let (ran, stopped) = p
        .stop_after_parts(job("job-1"), id, 2, StopCause::System)
        .await;
    assert_eq!(ran, stopped, "both callers get the same verdict");
    assert_eq!(
        stopped,
        RunVerdict::RunAgain {
            after: Duration::ZERO
        }
    );
    p.check_mode().await;
    let at_stop = p.get(id).await;
    assert_eq!(at_stop.state, UploadState::Running);
    // Nothing goes out between runs (an aborted PUT may still be logged).
    tokio::time::sleep(Duration::from_millis(600)).await;
    let before = store_requests(&h);
    tokio::time::sleep(Duration::from_millis(800)).await;
    assert_eq!(store_requests(&h), before, "requests after the stop");
    h.faults.delay_puts(Duration::ZERO);
    let v = p.run("job-2", RunKind::UserInitiatedJob, None).await;
    assert_eq!(v, RunVerdict::Finished);
    p.check_mode().await;
    let done = p.get(id).await;
    assert_eq!(done.state, UploadState::Completed);
    assert_object(&h, &done, &f);
    // Parts confirmed before the stop were not sent again; the one in
    // flight at the stop may have been.
    let upload = done.upload_id.clone().unwrap();
    let stored = stored_parts(&h);
    let twice: Vec<u32> = (1..=done.parts_total)
        .filter(|n| stored.get(&(upload.clone(), *n)).copied().unwrap_or(0) != 1)
        .collect();
    assert!(twice.len() <= 1, "parts stored more than once: {twice:?}");
    for n in &twice {
        assert!(
            *n > at_stop.parts_done,
            "part {n} was confirmed before the stop"
        );
    }
    figures(&h, &p, "Android job stopped by the system").await;
}

/// The person stops the job from the Task Manager: every upload pauses
/// with `user_stopped`, and nothing resumes it at the next start of the
/// app, only an explicit resume.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_persons_stop_survives_an_app_restart_until_resumed() {
    let h = harness().await;
    let mut p = Platform::new(&h, 1).await;
    let files = [p.file("a.bin", 3 * PART + 1), p.file("b.bin", 1000)];
    let mut ids = Vec::new();
    for f in &files {
        ids.push(p.add(f).await.id);
    }
    // The job starts the app's process on its own. Slow parts: the stop
    // (sent once a part is done) lands with parts left even on a loaded
    // machine.
    p.relaunch().await;
    h.faults.delay_puts(Duration::from_millis(1000));
    p.app(AppState::Background).await;
    p.network().await;
    let (ran, stopped) = p
        .stop_after_parts(job("job"), ids[0], 1, StopCause::User)
        .await;
    let want = RunVerdict::NeedsUser(Attention::UserStopped);
    assert_eq!(stopped, want);
    assert_eq!(ran, want);
    // The big file is stopped mid-way; the small one after it is stopped
    // too, unless (a loaded machine) its one part and complete got through
    // before the stop did.
    let mut stopped_ids = Vec::new();
    for &id in &ids {
        let u = p.get(id).await;
        if id != ids[0] && u.state == UploadState::Completed {
            continue;
        }
        assert_eq!(u.state, UploadState::Paused, "upload {id}: {u:?}");
        assert_eq!(u.error.map(|e| e.code), Some(ErrorCode::UserStopped));
        stopped_ids.push(id);
    }
    assert_eq!(stopped_ids.first(), Some(&ids[0]));
    // The app starts again, on screen.
    p.relaunch().await;
    h.faults.delay_puts(Duration::ZERO);
    p.app(AppState::Foreground).await;
    p.network().await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    let before = store_requests(&h);
    let v = p.run("job-2", RunKind::UserInitiatedJob, None).await;
    assert_eq!(v, want, "a new run does not resume a person's stop");
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(store_requests(&h), before);
    for &id in &stopped_ids {
        assert_eq!(p.get(id).await.state, UploadState::Paused);
    }
    p.u.resume(Selector::All).await.unwrap();
    for (&id, f) in ids.iter().zip(&files) {
        let done = p
            .wait_for(id, "completed", |u| u.state == UploadState::Completed)
            .await;
        assert_object(&h, &done, f);
    }
    figures(&h, &p, "the person stops, the app restarts").await;
}

/// A regular job with a time limit ends a little before it, at a
/// checkpoint, and asks to run again; the OS's progress counts only what
/// each run sent, never goes back, and adds up.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_job_that_runs_out_of_time_asks_to_run_again_and_its_progress_adds_up() {
    let h = harness().await;
    let mut p = Platform::new(&h, 1).await;
    let f = p.file("a.bin", 6 * PART + 99);
    let id = p.add(&f).await.id;
    p.relaunch().await;
    h.faults.delay_puts(Duration::from_millis(700));
    p.app(AppState::Background).await;
    p.network().await;
    p.runs.push(RunKind::Job);
    let passes = p.u.status().await.unwrap().scheduler_passes;
    let started = Instant::now();
    let verdict = tokio::time::timeout(
        Duration::from_secs(20),
        p.u.run_background(BackgroundRun {
            id: "job-1".into(),
            kind: RunKind::Job,
            time_limit: Some(Duration::from_secs(3)),
        }),
    )
    .await
    .expect("the run ends near its limit")
    .unwrap();
    p.runs.clear();
    let ran_for = started.elapsed();
    // Waiting for slow PUTs is not work: the run's checks must not spin
    // the engine's loop (a few passes per part and progress tick).
    let turned = p.u.status().await.unwrap().scheduler_passes - passes;
    eprintln!("scheduler passes during a {ran_for:?} run: {turned}");
    assert!(turned < 400, "{turned} scheduler passes in {ran_for:?}");
    assert_eq!(
        verdict,
        RunVerdict::RunAgain {
            after: Duration::ZERO
        }
    );
    assert!(
        ran_for < Duration::from_secs(3),
        "ended before the limit: {ran_for:?}"
    );
    p.check_mode().await;
    let before = p.get(id).await;
    assert!(
        before.parts_done < before.parts_total,
        "the limit cut the run short"
    );
    // The second run, watched: progress counts this run's bytes only.
    h.faults.delay_puts(Duration::from_millis(100));
    p.runs.push(RunKind::UserInitiatedJob);
    let (v, samples) = {
        let u = &p.u;
        let run = u.run_background(BackgroundRun {
            id: "job-2".into(),
            kind: RunKind::UserInitiatedJob,
            time_limit: None,
        });
        tokio::pin!(run);
        let mut samples = Vec::new();
        let v = loop {
            tokio::select! {
                v = &mut run => break v.unwrap(),
                _ = tokio::time::sleep(Duration::from_millis(40)) => {
                    samples.push(u.background_progress("job-2").await.unwrap());
                }
            }
        };
        (v, samples)
    };
    p.runs.clear();
    assert_eq!(v, RunVerdict::Finished);
    assert!(samples.len() >= 3, "progress sampled during the run");
    let this_run = f.metadata().unwrap().len() - before.parts_done as u64 * PART;
    let mut last = 0;
    for s in &samples {
        assert!(
            s.done_bytes >= last,
            "progress went back: {} < {last}",
            s.done_bytes
        );
        last = s.done_bytes;
        assert!(s.done_bytes <= s.total_bytes);
        assert!(
            s.total_bytes <= this_run,
            "total {} counts more than this run's {this_run}",
            s.total_bytes
        );
        assert!(!s.title.is_empty());
    }
    let first = &samples[0];
    assert!(first.work_remains);
    // Asked after the verdict, the run's figures stand: all it sent.
    let end = p.u.background_progress("job-2").await.unwrap();
    assert_eq!((end.done_bytes, end.total_bytes), (this_run, this_run));
    assert!(!end.work_remains);
    let done = p.get(id).await;
    assert_eq!(done.state, UploadState::Completed);
    assert_object(&h, &done, &f);
    figures(&h, &p, "job out of time, progress").await;
}

/// Waits (bounded) until the engine holds `n` handed-off tasks and, with
/// `idle`, has no staging or request of its own under way.
async fn wait_handed_off(u: &Uploader, n: u32, idle: bool) {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let s = u.status().await.unwrap();
        if s.tasks_handed_off == n && !(idle && s.engine_busy) {
            return;
        }
        assert!(Instant::now() < deadline, "{n} tasks handed off: {s:?}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// Runs these tasks as the platform's session would, reporting each end.
fn run_tasks(u: &Uploader, tasks: Vec<s3bgu_core::PartTask>) -> tokio::task::JoinHandle<()> {
    let reporter = u.task_reporter();
    tokio::spawn(async move {
        let http = reqwest::Client::new();
        for t in tasks {
            let outcome = execute(&http, &t, Act::Put).await;
            reporter.report(t.task_id, outcome);
        }
    })
}

fn ids(tasks: &[s3bgu_core::PartTask]) -> Vec<String> {
    tasks.iter().map(|t| t.task_id.clone()).collect()
}

/// iOS: on screen, the next parts are already with the session (made while
/// active, so iOS does not defer them); in the background the rest follow;
/// back on screen, the tasks made in the background that have not started
/// are taken back and sent by the engine, while those under way and those
/// made on screen are left to finish.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn parts_handed_off_on_screen_stay_and_unstarted_ones_come_back() {
    let h = harness().await;
    let mut p = Platform::new(&h, 1).await;
    let f = p.file("a.bin", 8 * PART + 7);
    let id = p.add(&f).await.id;
    let t = p.attach(2);
    // The session holds every task: the test decides which run.
    t.hold();
    h.faults.delay_puts(Duration::from_millis(400));
    p.app(AppState::Foreground).await;
    p.network().await;
    wait_handed_off(&p.u, 2, false).await;
    let on_screen = ids(&t.submitted.lock().unwrap());
    assert_eq!(on_screen.len(), 2);
    assert_eq!(p.u.lifecycle_status().await.unwrap().prehanded, 2);
    // Leaves the screen: everything else goes to the session.
    p.app(AppState::Background).await;
    let parts_done = p.get(id).await.parts_done;
    let left = 9 - parts_done;
    wait_handed_off(&p.u, left, true).await;
    let all = t.submitted.lock().unwrap().clone();
    let in_background: Vec<String> = ids(&all)
        .into_iter()
        .filter(|i| !on_screen.contains(i))
        .collect();
    assert_eq!(in_background.len() as u32, left - 2);
    // One of them has started sending.
    p.u.task_reporter()
        .report_progress(in_background[0].clone(), 64 * 1024);
    p.app(AppState::Foreground).await;
    let s = p.u.lifecycle_status().await.unwrap();
    let mut cancelled = t.cancelled.lock().unwrap().clone();
    cancelled.sort();
    let mut unstarted: Vec<String> = in_background[1..].to_vec();
    unstarted.sort();
    assert_eq!(
        cancelled, unstarted,
        "exactly the unstarted background tasks are taken back"
    );
    assert_eq!(s.reclaimed_total, unstarted.len() as u64);
    // The session runs what it still has; the engine sends the rest.
    let held = t.take_held();
    t.release();
    let keep: Vec<_> = held
        .into_iter()
        .filter(|task| !cancelled.contains(&task.task_id))
        .collect();
    assert_eq!(keep.len(), 3, "two made on screen, one under way");
    h.faults.delay_puts(Duration::ZERO);
    run_tasks(&p.u, keep).await.unwrap();
    let done = p
        .wait_for(id, "completed", |u| u.state == UploadState::Completed)
        .await;
    assert_object(&h, &done, &f);
    assert_each_part_stored_once(&h, &done);
    figures(&h, &p, "pre-hand-off and reclaim").await;
}

/// iOS: the app was killed with parts in its background session; the
/// session finished them while it was dead and relaunches it. Reports come
/// before the transport is registered and the session reconciled, and
/// after; the wake's runs answer "handed off" while a task is out, then
/// "finished". No part is sent twice.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_cold_launch_by_a_session_wake_takes_reports_before_and_after_reconcile() {
    let h = harness().await;
    let mut p = Platform::new(&h, 2).await;
    let f = p.file("a.bin", 3 * PART + 11);
    let id = p.add(&f).await.id;
    let t = p.attach(0);
    t.hold();
    p.app(AppState::Background).await;
    p.network().await;
    wait_handed_off(&p.u, 4, true).await;
    let tasks = t.take_held();
    assert_eq!(tasks.len(), 4);
    p.relaunch().await;
    // The session sends every part while the app is not running.
    let http = reqwest::Client::new();
    let mut outcomes = Vec::new();
    for task in &tasks {
        outcomes.push((task.task_id.clone(), execute(&http, task, Act::Put).await));
    }
    // Relaunched for the session's events: two reports come at once.
    let mut outcomes = outcomes.into_iter();
    for (task, outcome) in outcomes.by_ref().take(2) {
        p.u.report_task(task, outcome);
    }
    let t2 = p.attach(0);
    let live: Vec<String> = ids(&tasks[2..]);
    assert!(p.u.reconcile_tasks(live).await.unwrap().is_empty());
    let (third, third_outcome) = outcomes.next().unwrap();
    p.u.report_task(third, third_outcome);
    p.app(AppState::Background).await;
    p.network().await;
    let v = p
        .run("wake", RunKind::SessionWake, Some(Duration::from_secs(30)))
        .await;
    assert_eq!(v, RunVerdict::HandedOff, "one task is still out");
    let (last, last_outcome) = outcomes.next().unwrap();
    p.u.report_task(last, last_outcome);
    let v = p
        .run(
            "wake-2",
            RunKind::SessionWake,
            Some(Duration::from_secs(30)),
        )
        .await;
    assert_eq!(v, RunVerdict::Finished);
    let done = p.get(id).await;
    assert_eq!(done.state, UploadState::Completed);
    assert_object(&h, &done, &f);
    assert_each_part_stored_once(&h, &done);
    assert!(
        t2.submitted.lock().unwrap().is_empty(),
        "nothing handed off again"
    );
    figures(&h, &p, "cold session wake").await;
}

/// iOS 26: a continued-processing task keeps the engine sending itself in
/// the background; when it expires the engine hands the rest to the
/// session within the background window, and a later wake finishes.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_continued_task_expires_into_a_background_window() {
    let h = harness().await;
    let mut p = Platform::new(&h, 1).await;
    let f = p.file("a.bin", 6 * PART + 1);
    let id = p.add(&f).await.id;
    let t = p.attach(0);
    h.faults.delay_puts(Duration::from_millis(300));
    p.app(AppState::Foreground).await;
    p.network().await;
    p.runs.push(RunKind::ContinuedProcessing);
    let (ran, stopped) = {
        let u = &p.u;
        let run = u.run_background(BackgroundRun {
            id: "cp".into(),
            kind: RunKind::ContinuedProcessing,
            time_limit: None,
        });
        let script = async {
            // The person leaves the app; the task keeps it sending.
            u.set_app_state(AppState::Background, 2);
            let s = u.lifecycle_status().await.unwrap();
            assert_eq!(s.mode, "direct");
            let deadline = Instant::now() + Duration::from_secs(60);
            while p.get(id).await.parts_done < 1 {
                assert!(Instant::now() < deadline);
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
            assert!(
                t.submitted.lock().unwrap().is_empty(),
                "nothing handed off yet"
            );
            u.stop_background_run("cp", StopCause::System)
                .await
                .unwrap()
        };
        tokio::join!(run, script)
    };
    p.seq = 2;
    p.state = Some(AppState::Background);
    p.runs.clear();
    assert_eq!(ran.unwrap(), stopped);
    assert_eq!(
        stopped,
        RunVerdict::RunAgain {
            after: Duration::ZERO
        }
    );
    p.check_mode().await;
    h.faults.delay_puts(Duration::ZERO);
    let v = p
        .run(
            "window",
            RunKind::BackgroundWindow,
            Some(Duration::from_secs(25)),
        )
        .await;
    assert!(
        matches!(v, RunVerdict::HandedOff | RunVerdict::Finished),
        "the window hands the rest off: {v:?}"
    );
    let mut last = v;
    for _ in 0..100 {
        if last == RunVerdict::Finished {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
        last = p.run("wake", RunKind::SessionWake, None).await;
    }
    assert_eq!(last, RunVerdict::Finished);
    let done = p.get(id).await;
    assert_eq!(done.state, UploadState::Completed);
    assert_object(&h, &done, &f);
    assert_each_part_stored_once(&h, &done);
    assert!(
        !t.submitted.lock().unwrap().is_empty(),
        "the session carried parts"
    );
    figures(&h, &p, "continued task into a background window").await;
}

/// iOS: the background window expires (SUSPENDING) while a
/// continued-processing task runs. The task keeps the process alive, so the
/// engine goes on sending itself; only when the task is stopped does the
/// rest go to the session. Every part is stored once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_continued_task_outlives_the_background_window() {
    let h = harness().await;
    let mut p = Platform::new(&h, 1).await;
    let f = p.file("a.bin", 6 * PART + 1);
    let id = p.add(&f).await.id;
    let t = p.attach(0);
    h.faults.delay_puts(Duration::from_millis(300));
    p.app(AppState::Foreground).await;
    p.network().await;
    p.runs.push(RunKind::ContinuedProcessing);
    let (ran, stopped) = {
        let u = &p.u;
        let run = u.run_background(BackgroundRun {
            id: "cp".into(),
            kind: RunKind::ContinuedProcessing,
            time_limit: None,
        });
        let script = async {
            let deadline = Instant::now() + Duration::from_secs(60);
            while u.lifecycle_status().await.unwrap().runs.is_empty() {
                assert!(Instant::now() < deadline, "the run never began");
                tokio::time::sleep(Duration::from_millis(10)).await;
            }
            // The person leaves the app: the window begun then ends at once
            // beside the continued task (it would only hold its time)...
            u.set_app_state(AppState::Background, 2);
            let window = tokio::time::timeout(
                Duration::from_secs(20),
                u.run_background(BackgroundRun {
                    id: "window".into(),
                    kind: RunKind::BackgroundWindow,
                    time_limit: None,
                }),
            )
            .await
            .expect("a window beside a continued task ends at once");
            assert!(window.is_ok(), "{window:?}");
            assert_eq!(u.lifecycle_status().await.unwrap().mode, "direct");
            // ...and had it been held, its expiry would not stop the task.
            u.set_app_state(AppState::Suspending, 3);
            let s = u.lifecycle_status().await.unwrap();
            assert_eq!(s.state, Some(AppState::Suspending));
            assert_eq!(s.mode, "direct", "the continued task keeps it sending");
            // Still sending itself after the expiry: more parts are stored.
            let at_expiry = p.get(id).await.parts_done;
            while p.get(id).await.parts_done < at_expiry + 2 {
                assert!(Instant::now() < deadline, "nothing sent after the expiry");
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
            assert_eq!(u.lifecycle_status().await.unwrap().mode, "direct");
            assert!(
                t.submitted.lock().unwrap().is_empty(),
                "nothing handed off while the task runs"
            );
            u.stop_background_run("cp", StopCause::System)
                .await
                .unwrap()
        };
        tokio::join!(run, script)
    };
    p.seq = 3;
    p.state = Some(AppState::Suspending);
    p.runs.clear();
    assert_eq!(ran.unwrap(), stopped);
    assert_ne!(stopped, RunVerdict::Finished, "work was left at the stop");
    // The task ended, still suspending: the session carries the rest.
    p.check_mode().await;
    assert_eq!(p.u.lifecycle_status().await.unwrap().mode, "handoff");
    h.faults.delay_puts(Duration::ZERO);
    let done = p
        .wait_for(id, "completed", |u| u.state == UploadState::Completed)
        .await;
    assert_object(&h, &done, &f);
    assert_each_part_stored_once(&h, &done);
    assert!(
        !t.submitted.lock().unwrap().is_empty(),
        "the session carried the parts left at the stop"
    );
    figures(&h, &p, "continued task outlives the window").await;
}

/// A run in the background on this platform, to its verdict.
async fn job_verdict(p: &mut Platform, id: &str) -> RunVerdict {
    p.run(id, RunKind::UserInitiatedJob, None).await
}

/// Each verdict names what the platform must do: reschedule for a network,
/// for a time, or not at all because a person must act.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn each_verdict_names_what_the_platform_must_do() {
    let h = harness().await;
    let mut p = Platform::new(&h, 2).await;
    p.app(AppState::Background).await;
    p.network().await;
    let f = p.file("a.bin", 1000);

    // Unmetered only, on mobile data: wait for a network.
    let mut c = config_for(&h, 2);
    c.network_policy = s3bgu_core::NetworkPolicy::UnmeteredOnly;
    p.u.set_config(c).await.unwrap();
    p.u.set_network(NetworkState {
        online: true,
        metered: true,
    });
    let a = p.add(&f).await.id;
    assert_eq!(job_verdict(&mut p, "j1").await, RunVerdict::WaitForNetwork);
    assert_eq!(store_requests(&h), 0);
    p.u.set_config(config_for(&h, 2)).await.unwrap();

    // Paused by the app: nothing a run can do, and no reason to come back.
    p.u.pause(Selector::All).await.unwrap();
    assert_eq!(
        job_verdict(&mut p, "j2").await,
        RunVerdict::NeedsUser(Attention::Paused)
    );

    // The backend wants new headers.
    h.faults
        .fail_backend(s3bgu_testkit::Route::StartUpload, 1, 401, "{}");
    p.u.resume(Selector::All).await.unwrap();
    assert_eq!(
        job_verdict(&mut p, "j3").await,
        RunVerdict::NeedsUser(Attention::AuthRequired)
    );
    p.u.resume(Selector::All).await.unwrap();
    assert_eq!(job_verdict(&mut p, "j4").await, RunVerdict::Finished);
    assert_eq!(p.get(a).await.state, UploadState::Completed);

    // A long backoff: the run ends rather than wait, and says when to come.
    // (The server's Retry-After sets it: our own delays are jittered.)
    let mut c = config_for(&h, 2);
    c.retry.max_delay_ms = 10_000;
    p.u.set_config(c).await.unwrap();
    h.faults.fail_backend_with_header(
        s3bgu_testkit::Route::StartUpload,
        1,
        503,
        "{}",
        "Retry-After",
        "45",
    );
    let g = p.file("b.bin", 2000);
    let b = p.add(&g).await.id;
    match job_verdict(&mut p, "j5").await {
        RunVerdict::RunAgain { after } => assert!(
            after >= Duration::from_secs(30) && after <= Duration::from_secs(60),
            "after {after:?}"
        ),
        v => panic!("expected RunAgain, got {v:?}"),
    }
    assert_eq!(p.get(b).await.state, UploadState::Pending);

    // Every upload of the run failed: a person must look.
    p.u.cancel(Selector::Upload(b)).await.unwrap();
    p.u.set_config(config_for(&h, 2)).await.unwrap();
    let gone = p.file("c.bin", 3000);
    let c_id = p.add(&gone).await.id;
    std::fs::remove_file(&gone).unwrap();
    assert_eq!(
        job_verdict(&mut p, "j6").await,
        RunVerdict::NeedsUser(Attention::Failed)
    );
    assert_eq!(p.get(c_id).await.state, UploadState::Failed);
    figures(&h, &p, "each verdict").await;
}

/// Drives a future on this thread with no tokio runtime, as uniffi's
/// bindings do from the platform's threads.
fn block_on_plain<F: std::future::Future>(fut: F) -> F::Output {
    struct Unpark(std::thread::Thread);
    impl std::task::Wake for Unpark {
        fn wake(self: Arc<Self>) {
            self.0.unpark();
        }
    }
    let waker = std::task::Waker::from(Arc::new(Unpark(std::thread::current())));
    let mut cx = std::task::Context::from_waker(&waker);
    let mut fut = std::pin::pin!(fut);
    loop {
        if let std::task::Poll::Ready(v) = fut.as_mut().poll(&mut cx) {
            return v;
        }
        std::thread::park_timeout(Duration::from_millis(100));
    }
}

/// A run with a time limit, polled outside any tokio runtime (Kotlin and
/// Swift call it so), ends at its limit with a verdict, not a panic.
#[test]
fn a_timed_run_ends_at_its_limit_on_any_executor() {
    let rt = tokio::runtime::Runtime::new().unwrap();
    let h = rt.block_on(harness());
    let mut p = rt.block_on(Platform::new(&h, 1));
    let f = p.file("a.bin", 4 * PART);
    rt.block_on(p.add(&f));
    h.faults.delay_puts(Duration::from_millis(800));
    rt.block_on(async {
        p.app(AppState::Background).await;
        p.network().await;
    });
    let started = Instant::now();
    let v = block_on_plain(p.u.run_background(BackgroundRun {
        id: "job".into(),
        kind: RunKind::Job,
        time_limit: Some(Duration::from_secs(2)),
    }))
    .expect("run_background");
    assert_eq!(
        v,
        RunVerdict::RunAgain {
            after: Duration::ZERO
        }
    );
    assert!(
        started.elapsed() < Duration::from_secs(10),
        "{:?}",
        started.elapsed()
    );
    h.faults.delay_puts(Duration::ZERO);
    let v = block_on_plain(p.u.run_background(job("job-2"))).expect("run_background");
    assert_eq!(v, RunVerdict::Finished);
}

/// A run whose caller goes away (a cancelled coroutine, a task dropped)
/// ends: the engine does not keep sending for a run nobody waits on.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_run_whose_caller_goes_away_ends() {
    let h = harness().await;
    let mut p = Platform::new(&h, 1).await;
    let f = p.file("a.bin", 3 * PART);
    p.add(&f).await;
    h.faults.delay_puts(Duration::from_millis(500));
    p.app(AppState::Background).await;
    p.network().await;
    let gone =
        tokio::time::timeout(Duration::from_millis(300), p.u.run_background(job("job"))).await;
    assert!(
        gone.is_err(),
        "the run was still going when its caller left"
    );
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let s = p.u.lifecycle_status().await.unwrap();
        if s.runs.is_empty() {
            assert_eq!(s.mode, "stopped");
            break;
        }
        assert!(Instant::now() < deadline, "the run stayed: {s:?}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    figures(&h, &p, "caller gone").await;
}

/// Android schedules its user-initiated job at the person's action, before
/// the file is hashed (the app must be visible when it schedules). The run
/// that starts meanwhile waits for the add instead of finishing with an
/// empty queue, then sends the file; a run stopped during the hashing asks
/// to run again.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_run_begun_while_a_file_hashes_waits_for_its_upload() {
    use common::opener::{gated_uri, GatedOpener};
    let h = harness().await;
    let mut p = Platform::new(&h, 2).await;
    p.app(AppState::Foreground).await;
    p.network().await;
    let opener = GatedOpener::new(p.dir.path());
    p.u.set_file_opener(Some(opener.clone() as Arc<dyn s3bgu_core::FileOpener>));
    let path = p.file("video.bin", 6 << 20);
    opener.hold();
    let u = &p.u;
    let add = async {
        u.add_file(s3bgu_core::NewUpload {
            path: PathBuf::from(gated_uri("video.bin")),
            transfer_id: "t".into(),
            file_name: None,
            user_params: Default::default(),
        })
        .await
        .expect("add_file")
    };
    // The person leaves the app while the file hashes; the job starts.
    let flow = async {
        let deadline = Instant::now() + Duration::from_secs(60);
        while opener.in_flight() == 0 {
            assert!(Instant::now() < deadline, "the opener was never called");
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        u.set_app_state(AppState::Background, 100);
        // Stopped while the file still hashes: its upload will need a run.
        let stopped = u.run_background(job("early"));
        let stop = async {
            tokio::time::sleep(Duration::from_millis(50)).await;
            u.stop_background_run("early", StopCause::System)
                .await
                .unwrap()
        };
        let (early, stop) = tokio::join!(stopped, stop);
        assert_eq!(early.unwrap(), stop);
        assert_eq!(
            stop,
            RunVerdict::RunAgain {
                after: Duration::ZERO
            }
        );
        let mut run = Box::pin(u.run_background(job("uidt")));
        // Without the add counted, the run would end at once: nothing queued.
        assert!(
            tokio::time::timeout(Duration::from_millis(500), &mut run)
                .await
                .is_err(),
            "the run ended while the file was hashing"
        );
        opener.release();
        tokio::time::timeout(Duration::from_secs(90), run)
            .await
            .expect("the run returns")
            .expect("run_background")
    };
    let (info, verdict) = tokio::join!(add, flow);
    assert_eq!(verdict, RunVerdict::Finished);
    let done = p.get(info.id).await;
    assert_eq!(done.state, UploadState::Completed);
    assert_object(&h, &done, &path);
    assert_each_part_stored_once(&h, &done);
}
