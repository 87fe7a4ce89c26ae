package com.s3bguploader.test

import android.app.job.JobInfo
import android.app.job.JobParameters
import android.os.Build
import android.os.PersistableBundle
import com.s3bguploader.UploadJobs
import org.junit.Assert.assertEquals

// The suite is compiled against API 35 and runs at every level of
// resources/robolectric.properties (24 to 35): a call that a lower level lacks
// goes through these helpers, which answer with what that level has.

/** User-initiated data transfer jobs exist from API 34; below, the module schedules regular jobs. */
val hasUserInitiatedJobs: Boolean get() = Build.VERSION.SDK_INT >= 34

/** Notification channels exist from API 26. */
val hasNotificationChannels: Boolean get() = Build.VERSION.SDK_INT >= 26

/** `JobInfo.isUserInitiated` (API 34); no job is user-initiated below. */
val JobInfo.userInitiated: Boolean get() = hasUserInitiatedJobs && isUserInitiated

/**
 * A job's upload estimate (API 28+; the platform has none below): the
 * queue's bytes for a user-initiated job, unknown for a regular one, which
 * sends only a slice of it.
 */
fun assertUploadEstimate(expected: Long, job: JobInfo) {
    if (Build.VERSION.SDK_INT < 28) return
    val want = if (job.userInitiated) expected else JobInfo.NETWORK_BYTES_UNKNOWN.toLong()
    assertEquals(want, job.estimatedNetworkUploadBytes)
}

/**
 * The parameters the system hands a job. The hidden constructor changed at
 * API 26, 31 and 34 (read in android-all 7, 9, 12, 13 and 15): below 34 it is
 * found by its arity, and there is no user-initiated flag to pass.
 */
fun jobParameters(userInitiated: Boolean, jobId: Int = UploadJobs.JOB_ID): JobParameters {
    val extras = PersistableBundle()
    if (Build.VERSION.SDK_INT >= 34) {
        return JobParameters(null, null, jobId, extras, null, null, 0, false, false, userInitiated, null, null, null)
    }
    val args: Array<Any?> = when {
        // binder, id, extras, transient extras, clip, grant flags, deadline expired, expedited, uris, authorities, network
        Build.VERSION.SDK_INT >= 31 -> arrayOf(null, jobId, extras, null, null, 0, false, false, null, null, null)
        // the same without "expedited"
        Build.VERSION.SDK_INT >= 26 -> arrayOf(null, jobId, extras, null, null, 0, false, null, null, null)
        // binder, id, extras, deadline expired, uris, authorities
        else -> arrayOf(null, jobId, extras, false, null, null)
    }
    val constructor = JobParameters::class.java.constructors.single { it.parameterCount == args.size }
    return constructor.newInstance(*args) as JobParameters
}

/**
 * Marks [params] as stopped by the user (STOP_REASON_USER, API 31+). Returns
 * false below 31, where the platform gives a job no stop reason to read.
 */
fun stopByUser(params: JobParameters): Boolean {
    if (Build.VERSION.SDK_INT < 31) return false
    params.setStopReason(JobParameters.STOP_REASON_USER, JobParameters.INTERNAL_STOP_REASON_UNKNOWN, "test")
    return true
}
