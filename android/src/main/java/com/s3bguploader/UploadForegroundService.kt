package com.s3bguploader

import android.app.Service
import android.content.Intent
import android.content.pm.ServiceInfo
import android.os.Build
import android.os.IBinder
import android.util.Log
import com.s3bguploader.core.IdleReason
import kotlinx.coroutines.CoroutineScope
import kotlinx.coroutines.Dispatchers
import kotlinx.coroutines.Job
import kotlinx.coroutines.SupervisorJob
import kotlinx.coroutines.CancellationException
import kotlinx.coroutines.cancel
import kotlinx.coroutines.cancelAndJoin
import kotlinx.coroutines.delay
import kotlinx.coroutines.launch
import kotlinx.coroutines.runBlocking

/**
 * Opt-in fallback (API < 34, or long-running jobs revoked): a dataSync
 * foreground service. NOT declared by the library: the app (or the Expo
 * plugin) declares it with `foregroundServiceType="dataSync"` and the
 * FOREGROUND_SERVICE + FOREGROUND_SERVICE_DATA_SYNC permissions. On Android
 * 15 the system allows dataSync about 6 hours a day, then calls `onTimeout`:
 * the engine is suspended, the service stops and a regular job takes over.
 */
open class UploadForegroundService : Service() {
    private val scope = CoroutineScope(SupervisorJob() + Dispatchers.Default)
    private var run: Job? = null

    override fun onBind(intent: Intent?): IBinder? = null

    override fun onStartCommand(intent: Intent?, flags: Int, startId: Int): Int {
        val engine = S3BgUploaderRuntime.engine(this)
        val first = runBlocking { UploadNotifications.content(engine) }
        val notification = UploadNotifications.build(this, first)
        if (Build.VERSION.SDK_INT >= 29) {
            startForeground(UploadNotifications.NOTIFICATION_ID, notification, ServiceInfo.FOREGROUND_SERVICE_TYPE_DATA_SYNC)
        } else {
            startForeground(UploadNotifications.NOTIFICATION_ID, notification)
        }
        if (run?.isActive == true) return START_NOT_STICKY
        run = scope.launch {
            val progress = launch {
                while (true) {
                    delay(UploadNotifications.MIN_UPDATE_INTERVAL_MS)
                    val n = UploadNotifications.build(this@UploadForegroundService, UploadNotifications.content(engine))
                    getSystemService(android.app.NotificationManager::class.java)?.notify(UploadNotifications.NOTIFICATION_ID, n)
                }
            }
            val reason = try {
                engine.runUntilIdle()
            } catch (e: CancellationException) {
                throw e
            } catch (e: Exception) {
                Log.w(S3BgUploaderRuntime.TAG, "the engine stopped: ${e.javaClass.simpleName}")
                IdleReason.WAITING_FOR_NETWORK
            }
            progress.cancel()
            if (reason != IdleReason.SUSPENDED) {
                // Waiting for a network, or done: a job (with its network
                // constraint) takes over whatever is left.
                UploadJobs.scheduleRegular(this@UploadForegroundService, engine)
                stopForegroundCompat()
                stopSelf()
            }
        }
        // Not restarted by the system: the persisted job covers a killed process.
        return START_NOT_STICKY
    }

    /** Android 15+: the dataSync time budget is used up. */
    override fun onTimeout(startId: Int, fgsType: Int) {
        Log.i(S3BgUploaderRuntime.TAG, "foreground service time is up: suspending, a job continues")
        val engine = S3BgUploaderRuntime.engine(this)
        runBlocking {
            // The run first, so that it cannot start the engine again.
            run?.cancelAndJoin()
            engine.suspend()
            UploadJobs.scheduleRegular(this@UploadForegroundService, engine)
        }
        stopForegroundCompat()
        stopSelf()
    }

    private fun stopForegroundCompat() {
        stopForeground(STOP_FOREGROUND_REMOVE)
    }

    override fun onDestroy() {
        scope.cancel()
        super.onDestroy()
    }
}
