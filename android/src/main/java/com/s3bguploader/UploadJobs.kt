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
import com.s3bguploader.core.RunVerdict
import com.s3bguploader.core.UploadEngine

/**
 * Schedules the background work that drains the queue. The engine decides
 * what a run does and what comes after it (its verdict); this object only
 * turns that into the OS's requests:
 * - at the person's action (uploadFile, resume), decided with the
 *   visibility of that moment, before the file is hashed: a user-initiated
 *   data transfer job (API 34+, visible, allowed), else the app's dataSync
 *   foreground service when it declared one (visible), else a regular job;
 *   any refusal falls back to the persisted regular job;
 * - after a run that must run again: a fresh regular job, delayed as the
 *   engine says, never the system's exponential backoff;
 * - at start-up and after a reboot: the regular job when work remains.
 * Every kind carries the engine's network policy as its constraint.
 */
object UploadJobs {
    const val JOB_ID = 0x53334255

    /** The step of the linear backoff of a job the system reschedules. */
    const val BACKOFF_MS = 30_000L

    /**
     * Shortest delay of a fresh job after a run that waited for a network:
     * the constraint holds it, this keeps a disagreement between the
     * engine's view and the scheduler's from spinning.
     */
    const val NETWORK_RECHECK_MS = 15_000L

    /**
     * The delay of the regular job scheduled beside the foreground service:
     * it takes over when the service stops, and does not run beside it.
     */
    const val SERVICE_BACKUP_DELAY_MS = 10 * 60_000L

    /** A fresh job after the engine could not be opened (a full disk, say). */
    const val OPEN_RETRY_MS = 15 * 60_000L

    enum class Kind { USER_INITIATED, REGULAR, FOREGROUND_SERVICE, ALREADY_SCHEDULED, NOTHING_TO_DO }

    /**
     * At the person's action, [visible] as it was at that moment. Called
     * before the file is hashed: the engine counts the add, so a job that
     * starts meanwhile waits for it. [extraBytes]: what the new file adds
     * to the estimate, when known.
     */
    suspend fun forUserAction(context: Context, engine: UploadEngine, visible: Boolean, extraBytes: Long = 0): Kind {
        val scheduler = context.getSystemService(JobScheduler::class.java) ?: return Kind.NOTHING_TO_DO
        val unmetered = unmeteredOnly(engine)
        val bytes = engine.bytesRemaining().toLong() + extraBytes
        bootReceiver(context, true)
        if (visible && Build.VERSION.SDK_INT >= 34 && canRunUserInitiatedJobs(scheduler)) {
            val pending = scheduler.getPendingJob(JOB_ID)
            if (pending != null && pending.isUserInitiated) return Kind.ALREADY_SCHEDULED
            // Replacing a regular job (stopped if running: the engine keeps
            // what it confirmed) with one the system lets run for long.
            if (submit(scheduler, jobInfo(context, true, unmetered, bytes))) return Kind.USER_INITIATED
            Log.w(S3BgUploaderRuntime.TAG, "the user-initiated job was refused: scheduling a regular job")
        } else if (visible && foregroundServiceDeclared(context)) {
            // The regular job backs the service up: it takes over when the
            // service stops (its time limit, the process killed, a reboot).
            ensureRegular(context, scheduler, unmetered, bytes, SERVICE_BACKUP_DELAY_MS)
            if (startForegroundService(context)) return Kind.FOREGROUND_SERVICE
        } else if (visible && Build.VERSION.SDK_INT >= 34) {
            Log.i(S3BgUploaderRuntime.TAG, "long-running jobs are not allowed: scheduling a regular job")
        }
        return ensureRegular(context, scheduler, unmetered, bytes)
    }

    /** At start-up, after a reboot or a service's end: the regular job when work remains. */
    suspend fun ensureScheduled(context: Context, engine: UploadEngine): Kind {
        val status = engine.status()
        if (status.active == 0u) {
            bootReceiver(context, false)
            return Kind.NOTHING_TO_DO
        }
        val scheduler = context.getSystemService(JobScheduler::class.java) ?: return Kind.NOTHING_TO_DO
        bootReceiver(context, true)
        return ensureRegular(context, scheduler, unmeteredOnly(engine), status.bytesRemaining.toLong())
    }

    /**
     * After a run (its job finished, or the service stopped): what the
     * engine's verdict asks for. A run to come is a fresh regular job; none
     * when nothing is left or a person must act (resume or setConfig
     * schedules again).
     */
    suspend fun afterVerdict(context: Context, engine: UploadEngine, verdict: RunVerdict): Kind {
        val scheduler = context.getSystemService(JobScheduler::class.java) ?: return Kind.NOTHING_TO_DO
        val delay = when (verdict) {
            is RunVerdict.RunAgain -> verdict.afterMs.toLong().coerceAtLeast(0)
            is RunVerdict.WaitForNetwork -> NETWORK_RECHECK_MS
            else -> {
                if (engine.status().active == 0u) bootReceiver(context, false)
                return Kind.NOTHING_TO_DO
            }
        }
        // Called once the run's job is no longer the system's (finished or
        // its stop acknowledged): a job pending now was scheduled by someone
        // else meanwhile (a person's action, a policy change, the service's
        // backup) and is kept; replacing it could stop it mid-run.
        return ensureRegular(context, scheduler, unmeteredOnly(engine), engine.bytesRemaining().toLong(), delay)
    }

    /** While the foreground service runs: a backup job, not another run beside it. */
    suspend fun backupForService(context: Context, engine: UploadEngine): Kind {
        val scheduler = context.getSystemService(JobScheduler::class.java) ?: return Kind.NOTHING_TO_DO
        return ensureRegular(context, scheduler, unmeteredOnly(engine), engine.bytesRemaining().toLong(), SERVICE_BACKUP_DELAY_MS)
    }

    /** After the engine could not be opened for a run: try again later, unless only a person can help. */
    fun afterOpenFailure(context: Context, failure: S3BgUploaderRuntime.OpenFailure): Kind {
        if (failure.code == S3BgUploaderRuntime.DATABASE_CORRUPT) return Kind.NOTHING_TO_DO
        val scheduler = context.getSystemService(JobScheduler::class.java) ?: return Kind.NOTHING_TO_DO
        return submitRegular(context, scheduler, false, 0, OPEN_RETRY_MS)
    }

    /**
     * The network policy changed (setConfig): a pending job is scheduled
     * again with the new constraint (a running one is stopped; the engine
     * keeps what it confirmed).
     */
    suspend fun policyChanged(context: Context, engine: UploadEngine, visible: Boolean): Kind {
        val scheduler = context.getSystemService(JobScheduler::class.java) ?: return Kind.NOTHING_TO_DO
        val pending = scheduler.getPendingJob(JOB_ID) ?: return ensureScheduled(context, engine)
        if (engine.status().active == 0u) return Kind.NOTHING_TO_DO
        val unmetered = unmeteredOnly(engine)
        val bytes = engine.bytesRemaining().toLong()
        if (Build.VERSION.SDK_INT >= 34 && pending.isUserInitiated && visible &&
            submit(scheduler, jobInfo(context, true, unmetered, bytes))
        ) {
            return Kind.USER_INITIATED
        }
        return submitRegular(context, scheduler, unmetered, bytes, 0)
    }

    private suspend fun unmeteredOnly(engine: UploadEngine): Boolean =
        engine.config()?.networkPolicy == NetworkPolicy.UNMETERED_ONLY

    /** The regular job, unless a job is pending (scheduling under the same id would stop a running one). */
    private fun ensureRegular(context: Context, scheduler: JobScheduler, unmetered: Boolean, bytes: Long, delayMs: Long = 0): Kind {
        if (scheduler.getPendingJob(JOB_ID) != null) return Kind.ALREADY_SCHEDULED
        return submitRegular(context, scheduler, unmetered, bytes, delayMs)
    }

    private fun submitRegular(context: Context, scheduler: JobScheduler, unmetered: Boolean, bytes: Long, delayMs: Long): Kind {
        if (submit(scheduler, jobInfo(context, false, unmetered, bytes, delayMs))) return Kind.REGULAR
        // Nothing else can be asked for: the next start-up, boot or action tries again.
        Log.e(S3BgUploaderRuntime.TAG, "the job scheduler refused the upload job")
        return Kind.NOTHING_TO_DO
    }

    /** Whether the scheduler took the job; a refusal (a result or an exception) is never thrown on. */
    private fun submit(scheduler: JobScheduler, info: JobInfo): Boolean = try {
        scheduler.schedule(info) == JobScheduler.RESULT_SUCCESS
    } catch (e: RuntimeException) {
        // IllegalArgumentException / SecurityException: a user-initiated job
        // from the background or without RUN_USER_INITIATED_JOBS, a limit.
        Log.w(S3BgUploaderRuntime.TAG, "the job scheduler threw ${e.javaClass.simpleName}")
        false
    }

    internal fun jobInfo(context: Context, userInitiated: Boolean, unmetered: Boolean, estimatedBytes: Long, delayMs: Long = 0): JobInfo {
        val builder = JobInfo.Builder(JOB_ID, ComponentName(context, UploadJobService::class.java))
            .setRequiredNetworkType(if (unmetered) JobInfo.NETWORK_TYPE_UNMETERED else JobInfo.NETWORK_TYPE_ANY)
            // When the system reschedules (a user-initiated job it stopped),
            // the wait grows by a step, not doubling towards hours.
            .setBackoffCriteria(BACKOFF_MS, JobInfo.BACKOFF_POLICY_LINEAR)
        if (Build.VERSION.SDK_INT >= 28) {
            // A regular job sends one slice of the queue: an estimate of the
            // whole queue would make the scheduler judge a slow network
            // unable to carry it within the job's time and hold the job
            // (API 28+ connectivity checks). A user-initiated job may take
            // as long as it needs: it carries the whole estimate.
            val upload = if (userInitiated) estimatedBytes.coerceAtLeast(0) else JobInfo.NETWORK_BYTES_UNKNOWN.toLong()
            builder.setEstimatedNetworkBytes(JobInfo.NETWORK_BYTES_UNKNOWN.toLong(), upload)
        }
        if (userInitiated && Build.VERSION.SDK_INT >= 34) {
            builder.setUserInitiated(true)
        } else {
            // Survives a reboot (RECEIVE_BOOT_COMPLETED); a user-initiated job
            // is scheduled again from the next action, or replaced by this one.
            builder.setPersisted(true)
            if (delayMs > 0) builder.setMinimumLatency(delayMs)
        }
        return builder.build()
    }

    /**
     * Whether the user still allows long-running jobs (API 34+). The
     * scheduler answers; an error counts as no.
     */
    private fun canRunUserInitiatedJobs(scheduler: JobScheduler): Boolean = try {
        scheduler.canRunUserInitiatedJobs()
    } catch (e: RuntimeException) {
        false
    }

    private fun startForegroundService(context: Context): Boolean = try {
        val intent = Intent(context, UploadForegroundService::class.java)
        if (Build.VERSION.SDK_INT >= 26) context.startForegroundService(intent) else context.startService(intent)
        true
    } catch (e: RuntimeException) {
        // ForegroundServiceStartNotAllowedException (API 31+: the app left
        // the screen meanwhile), IllegalStateException, SecurityException.
        Log.w(S3BgUploaderRuntime.TAG, "the foreground service could not start: ${e.javaClass.simpleName}")
        false
    }

    /** The app opted in to the dataSync fallback by declaring the service with that type and its permissions. */
    fun foregroundServiceDeclared(context: Context): Boolean {
        val info = try {
            context.packageManager.getServiceInfo(ComponentName(context, UploadForegroundService::class.java), 0)
        } catch (e: PackageManager.NameNotFoundException) {
            return false
        }
        if (Build.VERSION.SDK_INT >= 29 && info.foregroundServiceType and android.content.pm.ServiceInfo.FOREGROUND_SERVICE_TYPE_DATA_SYNC == 0) {
            Log.w(S3BgUploaderRuntime.TAG, "UploadForegroundService is declared without foregroundServiceType=\"dataSync\": not used")
            return false
        }
        if (Build.VERSION.SDK_INT < 28) return true
        val granted = context.checkSelfPermission("android.permission.FOREGROUND_SERVICE") == PackageManager.PERMISSION_GRANTED
        val dataSync = Build.VERSION.SDK_INT < 34 ||
            context.checkSelfPermission("android.permission.FOREGROUND_SERVICE_DATA_SYNC") == PackageManager.PERMISSION_GRANTED
        return granted && dataSync
    }

    /**
     * The boot receiver runs only while work is queued: an app that ships
     * the library but has nothing to upload is not started at each boot.
     */
    internal fun bootReceiver(context: Context, enabled: Boolean) {
        val state = if (enabled) PackageManager.COMPONENT_ENABLED_STATE_ENABLED else PackageManager.COMPONENT_ENABLED_STATE_DEFAULT
        try {
            val component = ComponentName(context, BootReceiver::class.java)
            if (context.packageManager.getComponentEnabledSetting(component) != state) {
                context.packageManager.setComponentEnabledSetting(component, state, PackageManager.DONT_KILL_APP)
            }
        } catch (e: RuntimeException) {
            Log.w(S3BgUploaderRuntime.TAG, "the boot receiver could not be switched: ${e.javaClass.simpleName}")
        }
    }
}
