package com.s3bguploader

import android.app.Notification
import android.app.NotificationManager
import android.app.job.JobParameters
import android.app.job.JobService
import android.os.Build
import android.os.Handler
import android.os.Looper
import android.util.Log
import com.s3bguploader.core.BackgroundRun
import com.s3bguploader.core.RunKind
import com.s3bguploader.core.RunVerdict
import com.s3bguploader.core.StopCause
import com.s3bguploader.core.UploadEngine
import com.s3bguploader.core.UploaderException
import kotlinx.coroutines.CancellationException
import kotlinx.coroutines.CoroutineScope
import kotlinx.coroutines.Dispatchers
import kotlinx.coroutines.SupervisorJob
import kotlinx.coroutines.cancel
import kotlinx.coroutines.delay
import kotlinx.coroutines.launch
import java.util.concurrent.ConcurrentHashMap
import java.util.concurrent.atomic.AtomicLong

/**
 * A user-initiated data transfer job (API 34+) or a regular job: one
 * engine run (`runBackground`), whose verdict says what comes next. The
 * main thread never waits: `onStartJob` posts a notification and returns,
 * `onStopJob` tells the engine and answers at once (the engine stops at a
 * checkpoint within milliseconds; nothing confirmed is lost).
 */
open class UploadJobService : JobService() {
    private val scope = CoroutineScope(SupervisorJob() + Dispatchers.Default)
    private val runs = ConcurrentHashMap<Int, JobRun>()
    private val main = Handler(Looper.getMainLooper())

    private class JobRun(val params: JobParameters, val id: String, val userInitiated: Boolean) {
        /** onStopJob answered the system: the run must not finish the job itself. */
        @Volatile var stopped = false
    }

    override fun onStartJob(params: JobParameters): Boolean {
        val userInitiated = Build.VERSION.SDK_INT >= 34 && params.isUserInitiatedJob
        // First, with no engine call: a user-initiated job must show its
        // notification at once, and the engine may still be opening.
        showNotification(params, UploadNotifications.placeholder(this), userInitiated)
        val run = JobRun(params, "job-${params.jobId}-${next.incrementAndGet()}", userInitiated)
        runs[params.jobId] = run
        scope.launch { drive(run) }
        return true
    }

    private suspend fun drive(run: JobRun) {
        try {
            driveOnce(run)
        } catch (e: CancellationException) {
            throw e
        } catch (e: Exception) {
            // Nothing escapes into the process: the job ends, a later one retries.
            Log.e(S3BgUploaderRuntime.TAG, "the job failed: ${e.javaClass.simpleName}")
            val app = applicationContext
            val verdict = engineErrorVerdict()
            end(run, verdict) { UploadJobs.afterVerdict(app, S3BgUploaderRuntime.engine(app), verdict) }
        }
    }

    private suspend fun driveOnce(run: JobRun) {
        val engine = try {
            S3BgUploaderRuntime.engine(this)
        } catch (e: S3BgUploaderRuntime.OpenFailure) {
            Log.e(S3BgUploaderRuntime.TAG, "job without an engine: ${e.code}")
            val app = applicationContext
            end(run, null) { UploadJobs.afterOpenFailure(app, e) }
            return
        }
        if (UploadForegroundService.running) {
            // The service sends already: this job only stands by for it.
            val app = applicationContext
            end(run, RunVerdict.Finished) { UploadJobs.backupForService(app, engine) }
            return
        }
        val progress = scope.launch { reportProgress(engine, run) }
        var verdict = runOnce(engine, run)
        // A user-initiated job keeps its standing while a short wait passes
        // (a Retry-After, a backoff) or the network comes back: it waits
        // inside the job. Without a network the system stops it (its
        // constraint), which reschedules it without counting a failure, as
        // jobFinished(true) would.
        var waited = 0L
        while (run.userInitiated && !run.stopped && waited < IN_JOB_WAIT_MS) {
            val pause = when (verdict) {
                is RunVerdict.RunAgain -> verdict.afterMs.toLong().takeIf { it in 1..IN_JOB_WAIT_MS - waited }
                is RunVerdict.WaitForNetwork -> NETWORK_POLL_MS
                else -> null
            } ?: break
            delay(pause)
            waited += pause
            if (run.stopped) break
            verdict = runOnce(engine, run)
        }
        progress.cancel()
        // The last figures, so that a notification that stays shows them.
        runCatching { showProgress(engine, run) }
        val app = applicationContext
        end(run, verdict) { UploadJobs.afterVerdict(app, engine, verdict) }
    }

    private suspend fun runOnce(engine: UploadEngine, run: JobRun): RunVerdict = try {
        val kind = if (run.userInitiated) RunKind.USER_INITIATED_JOB else RunKind.JOB
        // A regular job runs for about 10 minutes: the engine ends it a few
        // seconds before, at a checkpoint, and asks for a fresh job.
        val limit = if (run.userInitiated) null else REGULAR_JOB_LIMIT_MS.toULong()
        engine.runBackground(BackgroundRun(run.id, kind, limit))
    } catch (e: CancellationException) {
        throw e
    } catch (e: Exception) {
        // The engine's error, uniffi's InternalException (an engine panic),
        // anything unforeseen: a later job tries again.
        Log.w(S3BgUploaderRuntime.TAG, "the run failed: ${(e as? UploaderException)?.errorCode() ?: e.javaClass.simpleName}")
        engineErrorVerdict()
    }

    /**
     * Finishes the job as [verdict] says (null: no engine), then schedules
     * what comes next through [next]. A user-initiated job that must run
     * again is rescheduled by the system, which keeps its standing (a
     * short linear backoff); any other job finishes and a fresh one is
     * scheduled, so no exponential backoff builds up.
     */
    private fun end(run: JobRun, verdict: RunVerdict?, next: suspend () -> Unit) {
        runs.remove(run.params.jobId, run)
        if (!run.userInitiated) cancelNotification()
        // onStopJob answered the system and schedules what follows.
        if (run.stopped) return
        val again = verdict is RunVerdict.RunAgain || verdict is RunVerdict.WaitForNetwork
        val keepStanding = run.userInitiated && again &&
            (verdict is RunVerdict.WaitForNetwork || (verdict as RunVerdict.RunAgain).afterMs == 0uL)
        jobFinished(run.params, keepStanding)
        if (keepStanding) return
        // jobFinished reaches the system from the main thread: scheduling
        // before it would replace (stop) this job. After it, and in the
        // process's scope, as the service may be destroyed meanwhile.
        main.post {
            S3BgUploaderRuntime.background.launch {
                runCatching { next() }.onFailure { Log.w(S3BgUploaderRuntime.TAG, "no job scheduled after the run: ${it.javaClass.simpleName}") }
            }
        }
    }

    private suspend fun reportProgress(engine: UploadEngine, run: JobRun) {
        while (true) {
            runCatching { showProgress(engine, run) }.onFailure { if (it is CancellationException) throw it }
            delay(UploadNotifications.MIN_UPDATE_INTERVAL_MS)
        }
    }

    private suspend fun showProgress(engine: UploadEngine, run: JobRun) {
        val p = engine.backgroundProgress(run.id)
        if (run.stopped) return
        showNotification(run.params, UploadNotifications.build(this, p), run.userInitiated)
        if (run.userInitiated) reportBytes(run.params, p.doneBytes.toLong(), p.totalBytes.toLong())
    }

    /**
     * A user-initiated job's byte counts, for the system's progress and
     * quota decisions: what this job sent, and what it will have sent in
     * all (sent plus what the active uploads still need).
     */
    protected open fun reportBytes(params: JobParameters, transferred: Long, estimated: Long) {
        updateTransferredNetworkBytes(params, 0, transferred)
        updateEstimatedNetworkBytes(params, 0, estimated)
    }

    /**
     * Posts or updates the job's notification. A user-initiated job hands it
     * to the system (removed when the job ends); a regular job posts it as a
     * plain notification, removed when the job ends or stops.
     */
    protected open fun showNotification(params: JobParameters, notification: Notification, userInitiated: Boolean) {
        try {
            if (userInitiated) {
                setNotification(params, UploadNotifications.NOTIFICATION_ID, notification, JOB_END_NOTIFICATION_POLICY_REMOVE)
            } else {
                getSystemService(NotificationManager::class.java)?.notify(UploadNotifications.NOTIFICATION_ID, notification)
            }
        } catch (e: RuntimeException) {
            // A notification the system refuses must not end the job.
            Log.w(S3BgUploaderRuntime.TAG, "notification refused: ${e.javaClass.simpleName}")
        }
    }

    private fun cancelNotification() {
        runCatching { getSystemService(NotificationManager::class.java)?.cancel(UploadNotifications.NOTIFICATION_ID) }
    }

    override fun onStopJob(params: JobParameters): Boolean {
        val reason = if (Build.VERSION.SDK_INT >= 31) params.stopReason else JobParameters.STOP_REASON_UNDEFINED
        val cause = when (reason) {
            JobParameters.STOP_REASON_USER -> StopCause.USER
            JobParameters.STOP_REASON_TIMEOUT -> StopCause.TIMEOUT
            else -> StopCause.SYSTEM
        }
        val run = runs[params.jobId]
        val userInitiated = Build.VERSION.SDK_INT >= 34 && params.isUserInitiatedJob
        // The person's stop (Task Manager): uploads pause with user_stopped
        // until resumed, no job. Replaced by the app (a new job under the
        // id): that job continues. A user-initiated job the system stopped
        // (its network went, say) is rescheduled by the system and stays
        // user-initiated; any other stop ends this job and the run
        // schedules a fresh one (a timeout answered with "reschedule"
        // would count as a failure and back off exponentially).
        val replaced = reason == JobParameters.STOP_REASON_CANCELLED_BY_APP
        val reschedule = cause == StopCause.SYSTEM && userInitiated && !replaced
        run?.stopped = true
        if (!userInitiated) cancelNotification()
        if (cause == StopCause.USER) Log.i(S3BgUploaderRuntime.TAG, "the user stopped the upload job")
        val id = run?.id ?: "job-${params.jobId}-stopped"
        val app = applicationContext
        // The process's scope, not the service's: the service is destroyed
        // right after this returns, and the fresh job must still be made.
        S3BgUploaderRuntime.background.launch {
            try {
                val engine = S3BgUploaderRuntime.engine(app)
                val verdict = engine.stopBackgroundRun(id, cause)
                if (!reschedule && !replaced) {
                    // Scheduling under the job's id before the system has
                    // taken this answer would stop it again: after it.
                    main.post { S3BgUploaderRuntime.background.launch { runCatching { UploadJobs.afterVerdict(app, engine, verdict) } } }
                }
            } catch (e: Exception) {
                if (e is CancellationException) throw e
                Log.w(S3BgUploaderRuntime.TAG, "the stop could not reach the engine: ${e.javaClass.simpleName}")
            }
        }
        return reschedule
    }

    override fun onDestroy() {
        // A run still under way ends with its coroutine (the engine stops it).
        scope.cancel()
        super.onDestroy()
    }

    companion object {
        /** What a regular job is granted (JobParameters does not say). */
        const val REGULAR_JOB_LIMIT_MS = 10 * 60_000L

        /** The longest wait a user-initiated job spends inside itself. */
        const val IN_JOB_WAIT_MS = 120_000L

        /** How often a user-initiated job waiting for its network asks the engine again. */
        const val NETWORK_POLL_MS = 5_000L

        /** A fresh job after the engine answered a run with an error. */
        const val ENGINE_ERROR_RETRY_MS = 60_000L

        private val next = AtomicLong()

        /** What a run the engine could not answer asks for. */
        internal fun engineErrorVerdict(): RunVerdict = RunVerdict.RunAgain(ENGINE_ERROR_RETRY_MS.toULong())
    }
}
