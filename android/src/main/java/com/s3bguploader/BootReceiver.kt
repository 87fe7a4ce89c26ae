package com.s3bguploader

import android.content.BroadcastReceiver
import android.content.Context
import android.content.Intent
import kotlinx.coroutines.CoroutineScope
import kotlinx.coroutines.Dispatchers
import kotlinx.coroutines.launch

/**
 * After a reboot or an app update: schedules the regular job when the queue
 * still has work (a user-initiated job does not survive a reboot, and cannot
 * be scheduled from the background). No JavaScript is loaded.
 */
class BootReceiver : BroadcastReceiver() {
    override fun onReceive(context: Context, intent: Intent) {
        if (intent.action != Intent.ACTION_BOOT_COMPLETED && intent.action != Intent.ACTION_MY_PACKAGE_REPLACED) return
        // Null only when called directly rather than by a broadcast.
        val pending: PendingResult? = goAsync()
        val app = context.applicationContext
        CoroutineScope(Dispatchers.Default).launch {
            try {
                UploadJobs.scheduleRegular(app, S3BgUploaderRuntime.engine(app))
            } finally {
                pending?.finish()
            }
        }
    }
}
