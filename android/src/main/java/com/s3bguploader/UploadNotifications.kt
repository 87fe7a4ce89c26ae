package com.s3bguploader

import android.app.Notification
import android.app.NotificationChannel
import android.app.NotificationManager
import android.app.PendingIntent
import android.content.Context
import android.os.Build
import com.s3bguploader.core.NotificationContent
import com.s3bguploader.core.UploadEngine
import com.s3bguploader.core.notificationContent

/**
 * The progress notification of the job and of the foreground service. What
 * it says comes from the engine (`notificationContent`: the app's templates
 * from the persisted configuration, or the defaults); this class only builds
 * it. Without the notification permission (Android 13+) the system hides it
 * and the job still runs (the Task Manager lists it).
 */
object UploadNotifications {
    const val CHANNEL_ID = "s3bgu_uploads"
    const val NOTIFICATION_ID = 0x53334255

    /** Shortest interval between two updates. */
    const val MIN_UPDATE_INTERVAL_MS = 1000L

    suspend fun content(engine: UploadEngine): NotificationContent {
        val config = engine.config()
        return notificationContent(config?.notificationTitle, config?.notificationText, engine.summary(null))
    }

    /** Before the engine answers (temporary: helper B replaces). */
    fun placeholder(context: Context): Notification = build(context, NotificationContent("Uploading", "", 0u, true, true))

    fun build(context: Context, p: com.s3bguploader.core.OsProgress): Notification {
        val pct = if (p.totalBytes == 0uL) 0u else ((p.doneBytes.toDouble() / p.totalBytes.toDouble()) * 100).toUInt().coerceAtMost(100u)
        return build(context, NotificationContent(p.title, p.text, pct.toUByte(), p.indeterminate || p.totalBytes == 0uL, p.workRemains))
    }

    fun ensureChannel(context: Context) {
        if (Build.VERSION.SDK_INT < 26) return
        val nm = context.getSystemService(NotificationManager::class.java) ?: return
        if (nm.getNotificationChannel(CHANNEL_ID) == null) {
            // Low importance: no sound, no heads-up, for a long transfer.
            val channel = NotificationChannel(CHANNEL_ID, "Uploads", NotificationManager.IMPORTANCE_LOW)
            channel.description = "Progress of background uploads"
            nm.createNotificationChannel(channel)
        }
    }

    fun build(context: Context, content: NotificationContent): Notification {
        ensureChannel(context)
        val builder = if (Build.VERSION.SDK_INT >= 26) {
            Notification.Builder(context, CHANNEL_ID)
        } else {
            @Suppress("DEPRECATION")
            Notification.Builder(context).setPriority(Notification.PRIORITY_LOW)
        }
        builder
            .setSmallIcon(android.R.drawable.stat_sys_upload)
            .setContentTitle(content.title)
            .setContentText(content.text)
            .setProgress(100, content.percentage.toInt(), content.indeterminate)
            .setOngoing(content.workRemains)
            .setOnlyAlertOnce(true)
            .setShowWhen(false)
        openAppIntent(context)?.let { builder.setContentIntent(it) }
        return builder.build()
    }

    /** A tap brings the app to the front. */
    private fun openAppIntent(context: Context): PendingIntent? {
        val launch = context.packageManager.getLaunchIntentForPackage(context.packageName) ?: return null
        return PendingIntent.getActivity(context, 0, launch, PendingIntent.FLAG_UPDATE_CURRENT or PendingIntent.FLAG_IMMUTABLE)
    }
}
