package com.s3bguploader

import android.app.NotificationManager
import android.app.Service
import android.content.Intent
import android.content.pm.ServiceInfo
import android.os.Build
import android.os.IBinder
import android.util.Log
import com.s3bguploader.core.BackgroundRun
import com.s3bguploader.core.RunKind
import com.s3bguploader.core.RunVerdict
import com.s3bguploader.core.StopCause
import com.s3bguploader.core.UploadEngine
import kotlinx.coroutines.CancellationException
import kotlinx.coroutines.CoroutineScope
import kotlinx.coroutines.Dispatchers
import kotlinx.coroutines.Job
import kotlinx.coroutines.SupervisorJob
import kotlinx.coroutines.cancel
import kotlinx.coroutines.delay
import kotlinx.coroutines.launch
import java.util.concurrent.atomic.AtomicLong

/**
 * Opt-in fallback (API < 34, or long-running jobs not allowed): a dataSync
 * foreground service running one engine run. NOT declared by the library:
 * the app (or the Expo plugin) declares it with
 * `foregroundServiceType="dataSync"` and the FOREGROUND_SERVICE +
 * FOREGROUND_SERVICE_DATA_SYNC permissions. A persisted regular job is
 * scheduled beside it and takes over whatever the service leaves. On
 * Android 15 the system allows dataSync about 6 hours a day, then calls
 * `onTimeout`: the engine stops at a checkpoint and the service stops.
 * The main thread never waits for the engine.
 */
open class UploadForegroundService : Service() {
    private val scope = CoroutineScope(SupervisorJob() + Dispatchers.Default)
    @Volatile private var run: Job? = null
    @Volatile private var runId: String? = null
    @Volatile private var stopped = false

    override fun onBind(intent: Intent?): IBinder? = null

    override fun onStartCommand(intent: Intent?, flags: Int, startId: Int): Int {
        // Within seconds of startForegroundService, with no engine call.
        try {
            val notification = UploadNotifications.placeholder(this)
            if (Build.VERSION.SDK_INT >= 29) {
                startForeground(UploadNotifications.NOTIFICATION_ID, notification, ServiceInfo.FOREGROUND_SERVICE_TYPE_DATA_SYNC)
            } else {
                startForeground(UploadNotifications.NOTIFICATION_ID, notification)
            }
        } catch (e: RuntimeException) {
            // Not allowed now (ForegroundServiceStartNotAllowedException,
            // a missing permission or type): the regular job carries on.
            Log.w(S3BgUploaderRuntime.TAG, "the foreground service may not start: ${e.javaClass.simpleName}")
            stopSelf()
            return START_NOT_STICKY
        }
        if (run?.isActive == true) return START_NOT_STICKY
        stopped = false
        running = true
        val id = "fgs-${next.incrementAndGet()}"
        runId = id
        run = scope.launch { drive(id) }
        // Not restarted by the system: the persisted job covers a killed process.
        return START_NOT_STICKY
    }

    private suspend fun drive(id: String) {
        val engine = try {
            S3BgUploaderRuntime.engine(this)
        } catch (e: S3BgUploaderRuntime.OpenFailure) {
            Log.e(S3BgUploaderRuntime.TAG, "foreground service without an engine: ${e.code}")
            finish()
            return
        }
        val progress = scope.launch { reportProgress(engine, id) }
        val verdict = try {
            engine.runBackground(BackgroundRun(id, RunKind.FOREGROUND_SERVICE, null))
        } catch (e: CancellationException) {
            throw e
        } catch (e: Exception) {
            Log.w(S3BgUploaderRuntime.TAG, "the run failed: ${e.javaClass.simpleName}")
            UploadJobService.engineErrorVerdict()
        }
        progress.cancel()
        running = false
        if (stopped) return
        val app = applicationContext
        S3BgUploaderRuntime.background.launch { runCatching { UploadJobs.afterVerdict(app, engine, verdict) } }
        finish()
    }

    private suspend fun reportProgress(engine: UploadEngine, id: String) {
        while (true) {
            try {
                val n = UploadNotifications.build(this, engine.backgroundProgress(id))
                if (!stopped) getSystemService(NotificationManager::class.java)?.notify(UploadNotifications.NOTIFICATION_ID, n)
            } catch (e: Exception) {
                if (e is CancellationException) throw e
            }
            delay(UploadNotifications.MIN_UPDATE_INTERVAL_MS)
        }
    }

    /** Android 15+ (apps targeting 35): the dataSync time budget is used up. Returns at once. */
    override fun onTimeout(startId: Int, fgsType: Int) {
        Log.i(S3BgUploaderRuntime.TAG, "foreground service time is up: the job continues")
        stopRun(StopCause.TIMEOUT)
        finish()
    }

    /** Android 14 calls this form only for the shortService type; kept for any time limit it may bring. */
    @Deprecated("Android 15 calls onTimeout(startId, fgsType)")
    override fun onTimeout(startId: Int) {
        stopRun(StopCause.TIMEOUT)
        finish()
    }

    private fun stopRun(cause: StopCause) {
        running = false
        if (stopped) return
        stopped = true
        val id = runId ?: return
        val app = applicationContext
        S3BgUploaderRuntime.background.launch {
            try {
                val engine = S3BgUploaderRuntime.engine(app)
                UploadJobs.afterVerdict(app, engine, engine.stopBackgroundRun(id, cause))
            } catch (e: Exception) {
                Log.w(S3BgUploaderRuntime.TAG, "the stop could not reach the engine: ${e.javaClass.simpleName}")
            }
        }
    }

    private fun finish() {
        runCatching { stopForeground(STOP_FOREGROUND_REMOVE) }
        stopSelf()
    }

    override fun onDestroy() {
        // Stopped from outside while running (stopService, the system).
        if (run?.isActive == true) stopRun(StopCause.SYSTEM)
        scope.cancel()
        super.onDestroy()
    }

    companion object {
        private val next = AtomicLong()

        /** The service's run is under way (a job started meanwhile stands by). */
        @Volatile internal var running = false
    }
}
