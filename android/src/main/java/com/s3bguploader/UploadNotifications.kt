package com.s3bguploader

import android.app.Notification
import android.app.NotificationChannel
import android.app.NotificationManager
import android.app.PendingIntent
import android.content.Context
import android.content.pm.PackageManager
import android.content.res.Resources
import android.os.Build
import android.util.Log
import com.s3bguploader.core.OsProgress

/**
 * The progress notification of the job and of the foreground service. What
 * it says comes from the engine (`backgroundProgress`: the app's templates
 * from the persisted configuration, or the defaults); this class only builds
 * it. Without the notification permission (Android 13+) the system hides it
 * and the job still runs (the Task Manager lists it).
 *
 * What the app can set, without code:
 * - its own small icon: application meta-data [ICON_META_DATA] naming a
 *   drawable (`android:resource="@drawable/..."`); else a system upload icon;
 * - string resources `s3bgu_notification_channel_name`,
 *   `s3bgu_notification_channel_description` (the channel, in Settings) and
 *   `s3bgu_notification_placeholder_title` (shown before the engine is open).
 * Strings are looked up by name: the library has no resources of its own.
 */
object UploadNotifications {
    const val CHANNEL_ID = "s3bgu_uploads"
    const val NOTIFICATION_ID = 0x53334255

    /** Shortest interval between two updates. */
    const val MIN_UPDATE_INTERVAL_MS = 1000L

    /** Application meta-data: the notification's small icon (a drawable resource). */
    const val ICON_META_DATA = "com.s3bguploader.notification_icon"

    /**
     * Request code of the tap's PendingIntent. An app's own PendingIntent for
     * its launcher intent (usually request code 0) never matches ours, so
     * neither can replace the other's extras.
     */
    const val CONTENT_REQUEST_CODE = NOTIFICATION_ID

    internal const val DEFAULT_CHANNEL_NAME = "Uploads"
    internal const val DEFAULT_CHANNEL_DESCRIPTION = "Progress of background uploads"
    internal const val DEFAULT_PLACEHOLDER_TITLE = "Uploading"

    /** What is resolved once per process (binder calls): the channel, the icon, the tap. */
    private class AppSetup(val app: Context, val smallIcon: Int, val contentIntent: PendingIntent?)

    @Volatile private var setup: AppSetup? = null

    private fun setup(context: Context): AppSetup {
        val app = context.applicationContext ?: context
        setup?.takeIf { it.app === app }?.let { return it }
        return synchronized(this) {
            setup?.takeIf { it.app === app } ?: run {
                createChannel(app)
                AppSetup(app, smallIcon(app), openAppIntent(app)).also { setup = it }
            }
        }
    }

    /**
     * Shown the instant a job or the service starts, before the engine is
     * open: no engine call. Indeterminate and ongoing.
     */
    fun placeholder(context: Context): Notification {
        val title = appString(context, "s3bgu_notification_placeholder_title") ?: DEFAULT_PLACEHOLDER_TITLE
        return notification(context, title, null, 0, indeterminate = true, ongoing = true)
    }

    /** The notification for the engine's progress of a run (about once a second). */
    fun build(context: Context, progress: OsProgress): Notification {
        val indeterminate = progress.indeterminate || progress.totalBytes == 0UL
        val percent = if (indeterminate) 0 else percentOf(progress.doneBytes, progress.totalBytes)
        return notification(context, progress.title, progress.text, percent, indeterminate, progress.workRemains)
    }

    /** 0..100, rounded down, clamped (done can pass a total estimated earlier). */
    internal fun percentOf(done: ULong, total: ULong): Int =
        if (total == 0UL) 0 else (done.toDouble() * 100.0 / total.toDouble()).toInt().coerceIn(0, 100)

    /** The channel exists after this (created once per process; API 26+). */
    fun ensureChannel(context: Context) {
        setup(context)
    }

    private fun notification(
        context: Context,
        title: String,
        text: String?,
        percent: Int,
        indeterminate: Boolean,
        ongoing: Boolean,
    ): Notification {
        val s = setup(context)
        val builder = if (Build.VERSION.SDK_INT >= 26) {
            Notification.Builder(context, CHANNEL_ID)
        } else {
            @Suppress("DEPRECATION")
            Notification.Builder(context).setPriority(Notification.PRIORITY_LOW)
        }
        builder
            .setSmallIcon(s.smallIcon)
            .setContentTitle(title)
            .setContentText(text)
            .setProgress(100, percent, indeterminate)
            .setOngoing(ongoing)
            .setOnlyAlertOnce(true)
            .setShowWhen(false)
            .setCategory(Notification.CATEGORY_PROGRESS)
        s.contentIntent?.let { builder.setContentIntent(it) }
        return builder.build()
    }

    private fun createChannel(app: Context) {
        if (Build.VERSION.SDK_INT < 26) return
        val nm = app.getSystemService(NotificationManager::class.java) ?: return
        // Low importance: no sound, no heads-up, for a long transfer. Creating
        // an existing channel again only updates its name and description.
        val channel = NotificationChannel(
            CHANNEL_ID,
            appString(app, "s3bgu_notification_channel_name") ?: DEFAULT_CHANNEL_NAME,
            NotificationManager.IMPORTANCE_LOW,
        )
        channel.description = appString(app, "s3bgu_notification_channel_description") ?: DEFAULT_CHANNEL_DESCRIPTION
        try {
            nm.createNotificationChannel(channel)
        } catch (e: RuntimeException) {
            Log.w(S3BgUploaderRuntime.TAG, "notification channel not created: ${e.message}")
        }
    }

    /** The app's string resource [name], or null when it defines none. */
    private fun appString(context: Context, name: String): String? {
        val res = context.resources
        @Suppress("DiscouragedApi") // By name on purpose: the library is built without resources of its own.
        val id = res.getIdentifier(name, "string", context.packageName)
        if (id == 0) return null
        return try {
            res.getString(id).takeIf { it.isNotBlank() }
        } catch (e: Resources.NotFoundException) {
            null
        }
    }

    private fun smallIcon(app: Context): Int {
        val declared = try {
            metaData(app)?.getInt(ICON_META_DATA, 0) ?: 0
        } catch (e: Exception) {
            0
        }
        // A wrong id would make every notify() throw ("Invalid notification"):
        // only a drawable or mipmap the app really has is used.
        val usable = declared != 0 && try {
            app.resources.getResourceTypeName(declared) in setOf("drawable", "mipmap")
        } catch (e: Resources.NotFoundException) {
            false
        }
        return if (usable) declared else android.R.drawable.stat_sys_upload
    }

    @Suppress("DEPRECATION") // The flags overload needs API 33.
    private fun metaData(app: Context) =
        app.packageManager.getApplicationInfo(app.packageName, PackageManager.GET_META_DATA).metaData

    /** A tap brings the app to the front. */
    private fun openAppIntent(app: Context): PendingIntent? =
        try {
            app.packageManager.getLaunchIntentForPackage(app.packageName)?.let {
                // No FLAG_UPDATE_CURRENT: the intent carries no extras to update.
                PendingIntent.getActivity(app, CONTENT_REQUEST_CODE, it, PendingIntent.FLAG_IMMUTABLE)
            }
        } catch (e: RuntimeException) {
            null
        }
}
