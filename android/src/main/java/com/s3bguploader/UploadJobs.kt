package com.s3bguploader

import android.app.job.JobInfo
import android.app.job.JobScheduler
import android.content.ComponentName
import android.content.Context
import android.content.Intent
import android.content.pm.PackageManager
import android.os.Build
import android.util.Log
import com.s3bguploader.core.NetworkPolicy
import com.s3bguploader.core.UploadEngine

/**
 * Schedules the background work that drains the queue:
 * - API 34+, from a user action while the app is visible: a user-initiated
 *   data transfer job (not time-limited while it makes progress);
 * - otherwise a regular persisted job (runs for as long as the system allows
 *   and is rescheduled), or, when the app declared
 *   `UploadForegroundService`, that dataSync service from a user action.
 * Every kind uses the same network constraint as the engine's policy.
 */
object UploadJobs {
    const val JOB_ID = 0x53334255

    enum class Kind { USER_INITIATED, REGULAR, FOREGROUND_SERVICE, ALREADY_SCHEDULED, NOTHING_TO_DO }

    /**
     * After `uploadFile` / `resume` (user action, [visible] tells whether the
     * app is in the foreground), at start-up and after a reboot.
     */
    suspend fun schedule(context: Context, engine: UploadEngine, userAction: Boolean, visible: Boolean): Kind {
        val status = engine.status()
        if (status.active == 0u) return Kind.NOTHING_TO_DO
        val scheduler = context.getSystemService(JobScheduler::class.java) ?: return Kind.NOTHING_TO_DO
        val unmetered = engine.config()?.networkPolicy == NetworkPolicy.UNMETERED_ONLY
        val bytes = status.bytesRemaining.toLong()

        val wantUidt = userAction && visible && Build.VERSION.SDK_INT >= 34 && canRunUserInitiatedJobs(scheduler)
        val pending = scheduler.getPendingJob(JOB_ID)
        if (pending != null && (!wantUidt || (Build.VERSION.SDK_INT >= 34 && pending.isUserInitiated))) {
            // Rescheduling under the same id would stop the running job.
            return Kind.ALREADY_SCHEDULED
        }
        if (!wantUidt && userAction && visible && foregroundServiceDeclared(context)) {
            if (Build.VERSION.SDK_INT >= 34) {
                Log.i(S3BgUploaderRuntime.TAG, "long-running jobs are not allowed: using the app's foreground service")
            }
            // The persisted regular job backs the service up: it takes over
            // when the service is stopped (its time limit, a swipe on some
            // devices, the process killed) and after a reboot.
            if (pending == null) scheduler.schedule(jobInfo(context, false, unmetered, bytes))
            val intent = Intent(context, UploadForegroundService::class.java)
            if (Build.VERSION.SDK_INT >= 26) context.startForegroundService(intent) else context.startService(intent)
            return Kind.FOREGROUND_SERVICE
        }
        if (!wantUidt && userAction && Build.VERSION.SDK_INT >= 34) {
            Log.i(S3BgUploaderRuntime.TAG, "user-initiated job not possible (revoked or app not visible): scheduling a regular job")
        }
        val info = jobInfo(context, wantUidt, unmetered, bytes)
        return if (scheduler.schedule(info) == JobScheduler.RESULT_SUCCESS) {
            if (wantUidt) Kind.USER_INITIATED else Kind.REGULAR
        } else {
            Log.w(S3BgUploaderRuntime.TAG, "the job scheduler refused the upload job")
            Kind.NOTHING_TO_DO
        }
    }

    /** The regular job, for the foreground service's timeout and the boot receiver. */
    suspend fun scheduleRegular(context: Context, engine: UploadEngine): Kind {
        if (engine.status().active == 0u) return Kind.NOTHING_TO_DO
        val scheduler = context.getSystemService(JobScheduler::class.java) ?: return Kind.NOTHING_TO_DO
        val unmetered = engine.config()?.networkPolicy == NetworkPolicy.UNMETERED_ONLY
        val info = jobInfo(context, false, unmetered, engine.bytesRemaining().toLong())
        return if (scheduler.schedule(info) == JobScheduler.RESULT_SUCCESS) Kind.REGULAR else Kind.NOTHING_TO_DO
    }

    internal fun jobInfo(context: Context, userInitiated: Boolean, unmetered: Boolean, estimatedBytes: Long): JobInfo {
        val builder = JobInfo.Builder(JOB_ID, ComponentName(context, UploadJobService::class.java))
            .setRequiredNetworkType(if (unmetered) JobInfo.NETWORK_TYPE_UNMETERED else JobInfo.NETWORK_TYPE_ANY)
        if (Build.VERSION.SDK_INT >= 28) {
            builder.setEstimatedNetworkBytes(JobInfo.NETWORK_BYTES_UNKNOWN.toLong(), estimatedBytes.coerceAtLeast(0))
        }
        if (userInitiated && Build.VERSION.SDK_INT >= 34) {
            builder.setUserInitiated(true)
        } else {
            // Survives a reboot (RECEIVE_BOOT_COMPLETED); a user-initiated job
            // is scheduled again from the next user action or by BootReceiver.
            builder.setPersisted(true)
        }
        return builder.build()
    }

    /**
     * Whether the user still allows long-running jobs (API 34+). A variable
     * so that JVM tests can answer, as Robolectric has no job service
     * behind `JobScheduler`.
     */
    @Volatile internal var canRunUserInitiatedJobs: (JobScheduler) -> Boolean = { scheduler ->
        try {
            scheduler.canRunUserInitiatedJobs()
        } catch (e: RuntimeException) {
            false
        }
    }

    /** The app opted in to the dataSync fallback by declaring the service (and its permissions). */
    fun foregroundServiceDeclared(context: Context): Boolean {
        val declared = try {
            context.packageManager.getServiceInfo(ComponentName(context, UploadForegroundService::class.java), 0)
            true
        } catch (e: PackageManager.NameNotFoundException) {
            false
        }
        if (!declared) return false
        if (Build.VERSION.SDK_INT < 28) return true
        val granted = context.checkSelfPermission("android.permission.FOREGROUND_SERVICE") == PackageManager.PERMISSION_GRANTED
        val dataSync = Build.VERSION.SDK_INT < 34 ||
            context.checkSelfPermission("android.permission.FOREGROUND_SERVICE_DATA_SYNC") == PackageManager.PERMISSION_GRANTED
        return granted && dataSync
    }
}
