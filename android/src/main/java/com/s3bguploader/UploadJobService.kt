package com.s3bguploader

import android.app.Notification
import android.app.NotificationManager
import android.app.job.JobParameters
import android.app.job.JobService
import android.os.Build
import android.os.SystemClock
import android.util.Log
import com.s3bguploader.core.IdleReason
import com.s3bguploader.core.UploadEngine
import kotlinx.coroutines.CoroutineScope
import kotlinx.coroutines.Dispatchers
import kotlinx.coroutines.Job
import kotlinx.coroutines.SupervisorJob
import kotlinx.coroutines.CancellationException
import kotlinx.coroutines.cancel
import kotlinx.coroutines.cancelAndJoin
import kotlinx.coroutines.delay
import kotlinx.coroutines.isActive
import kotlinx.coroutines.launch
import kotlinx.coroutines.runBlocking
import java.util.concurrent.ConcurrentHashMap

/**
 * Runs the engine until the queue is drained, inside a user-initiated data
 * transfer job (API 34+) or a regular job. `onStopJob` (the system's or the
 * user's stop) suspends the engine: nothing confirmed is lost and the parts
 * in flight are sent again later.
 */
open class UploadJobService : JobService() {
    private val scope = CoroutineScope(SupervisorJob() + Dispatchers.Default)
    private val runs = ConcurrentHashMap<Int, Job>()

    override fun onStartJob(params: JobParameters): Boolean {
        val engine = S3BgUploaderRuntime.engine(this)
        val userInitiated = Build.VERSION.SDK_INT >= 34 && params.isUserInitiatedJob
        // A user-initiated job must show its notification right away.
        val first = runBlocking { UploadNotifications.content(engine) }
        showNotification(params, UploadNotifications.build(this, first), userInitiated)
        runs[params.jobId] = scope.launch {
            val progress = launch { reportProgress(engine, params, userInitiated) }
            val reason = try {
                engine.runUntilIdle()
            } catch (e: CancellationException) {
                // onStopJob: it answers the system itself.
                throw e
            } catch (e: Exception) {
                Log.w(S3BgUploaderRuntime.TAG, "the engine stopped: ${e.javaClass.simpleName}")
                IdleReason.SUSPENDED.also { jobFinished(params, true) }
            }
            progress.cancel()
            runs.remove(params.jobId)
            when (reason) {
                // onStopJob answered the system already.
                IdleReason.SUSPENDED -> Unit
                // The job's network constraint brings it back.
                IdleReason.WAITING_FOR_NETWORK -> finish(params, true)
                // Drained, or only paused / auth-paused / failed uploads left:
                // resume() or setConfig() schedules again.
                else -> finish(params, false)
            }
        }
        return true
    }

    private fun finish(params: JobParameters, reschedule: Boolean) {
        if (Build.VERSION.SDK_INT < 34 || !params.isUserInitiatedJob) {
            getSystemService(NotificationManager::class.java)?.cancel(UploadNotifications.NOTIFICATION_ID)
        }
        jobFinished(params, reschedule)
    }

    /** Progress at most once a second: notification, and the job's byte counts. */
    private suspend fun reportProgress(engine: UploadEngine, params: JobParameters, userInitiated: Boolean) {
        var last = SystemClock.elapsedRealtime()
        while (scope.isActive) {
            val wait = UploadNotifications.MIN_UPDATE_INTERVAL_MS - (SystemClock.elapsedRealtime() - last)
            if (wait > 0) delay(wait)
            last = SystemClock.elapsedRealtime()
            val content = UploadNotifications.content(engine)
            showNotification(params, UploadNotifications.build(this, content), userInitiated)
            if (userInitiated) {
                reportBytes(params, engine.summary(null).uploadedBytes.toLong(), engine.bytesRemaining().toLong())
            }
        }
    }

    /** A user-initiated job's byte counts, for the system's progress and quota decisions. */
    protected open fun reportBytes(params: JobParameters, uploaded: Long, remaining: Long) {
        updateTransferredNetworkBytes(params, 0, uploaded)
        updateEstimatedNetworkBytes(params, 0, remaining)
    }

    /**
     * Posts or updates the job's notification. A user-initiated job hands it
     * to the system (removed when the job ends); a regular job posts it as a
     * plain notification.
     */
    protected open fun showNotification(params: JobParameters, notification: Notification, userInitiated: Boolean) {
        if (userInitiated) {
            setNotification(params, UploadNotifications.NOTIFICATION_ID, notification, JOB_END_NOTIFICATION_POLICY_REMOVE)
        } else {
            getSystemService(NotificationManager::class.java)?.notify(UploadNotifications.NOTIFICATION_ID, notification)
        }
    }

    override fun onStopJob(params: JobParameters): Boolean {
        val engine = S3BgUploaderRuntime.engine(this)
        // The run first, so that it cannot start the engine again after the
        // suspension; then suspend (returns within milliseconds).
        runBlocking {
            runs.remove(params.jobId)?.cancelAndJoin()
            engine.suspend()
        }
        val byUser = Build.VERSION.SDK_INT >= 31 && params.stopReason == JobParameters.STOP_REASON_USER
        if (byUser) Log.i(S3BgUploaderRuntime.TAG, "the user stopped the upload job")
        // Ask to be run again unless the user stopped it from the Task Manager.
        return !byUser
    }

    override fun onDestroy() {
        scope.cancel()
        super.onDestroy()
    }
}
