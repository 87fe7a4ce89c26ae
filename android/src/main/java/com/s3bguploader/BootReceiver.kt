package com.s3bguploader

import android.content.BroadcastReceiver
import android.content.Context
import android.content.Intent
import android.util.Log
import kotlinx.coroutines.launch

/**
 * After a reboot or an app update: schedules the regular job when the queue
 * still has work (a user-initiated job does not survive a reboot, and cannot
 * be scheduled from the background). No JavaScript is loaded. Enabled only
 * while work is queued (UploadJobs.bootReceiver); nothing it meets (a
 * damaged queue, no engine for this ABI) escapes into the system.
 */
class BootReceiver : BroadcastReceiver() {
    override fun onReceive(context: Context, intent: Intent) {
        if (intent.action != Intent.ACTION_BOOT_COMPLETED && intent.action != Intent.ACTION_MY_PACKAGE_REPLACED) return
        // Null only when called directly rather than by a broadcast.
        val pending: PendingResult? = try {
            goAsync()
        } catch (e: IllegalStateException) {
            null
        }
        val app = context.applicationContext
        S3BgUploaderRuntime.background.launch {
            try {
                UploadJobs.ensureScheduled(app, S3BgUploaderRuntime.engine(app))
            } catch (e: S3BgUploaderRuntime.OpenFailure) {
                Log.e(S3BgUploaderRuntime.TAG, "after boot, no engine: ${e.code}")
                UploadJobs.afterOpenFailure(app, e)
            } catch (e: Exception) {
                Log.w(S3BgUploaderRuntime.TAG, "after boot, nothing scheduled: ${e.javaClass.simpleName}")
            } finally {
                pending?.finish()
            }
        }
    }
}
