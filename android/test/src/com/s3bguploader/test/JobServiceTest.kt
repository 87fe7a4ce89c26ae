package com.s3bguploader.test

import android.app.Application
import android.app.Notification
import android.app.NotificationManager
import android.app.job.JobInfo
import android.app.job.JobParameters
import android.app.job.JobScheduler
import android.content.ComponentName
import android.content.Intent
import android.content.pm.ActivityInfo
import android.content.pm.PackageManager
import android.content.pm.ResolveInfo
import android.content.pm.ServiceInfo
import com.s3bguploader.BootReceiver
import com.s3bguploader.UploadForegroundService
import com.s3bguploader.UploadJobService
import com.s3bguploader.UploadJobs
import com.s3bguploader.UploadNotifications
import com.s3bguploader.core.UploadEngine
import kotlinx.coroutines.runBlocking
import org.junit.After
import org.junit.Assert.assertArrayEquals
import org.junit.Assert.assertEquals
import org.junit.Assert.assertFalse
import org.junit.Assert.assertNotNull
import org.junit.Assert.assertNull
import org.junit.Assert.assertTrue
import org.junit.Before
import org.junit.Test
import org.junit.runner.RunWith
import org.robolectric.Robolectric
import org.robolectric.RobolectricTestRunner
import org.robolectric.RuntimeEnvironment
import org.robolectric.Shadows.shadowOf
import org.robolectric.annotation.Config
import java.util.Collections

/** Records every notification the job shows (the framework's `setNotification` is a no-op here). */
class RecordingJobService : UploadJobService() {
    val shown: MutableList<Pair<Notification, Boolean>> = Collections.synchronizedList(ArrayList())
    val bytes: MutableList<Pair<Long, Long>> = Collections.synchronizedList(ArrayList())

    override fun reportBytes(params: JobParameters, transferred: Long, estimated: Long) {
        bytes.add(transferred to estimated)
        super.reportBytes(params, transferred, estimated)
    }

    override fun showNotification(params: JobParameters, notification: Notification, userInitiated: Boolean) {
        shown.add(notification to userInitiated)
        super.showNotification(params, notification, userInitiated)
    }
}

fun Notification.title(): String = extras.getCharSequence(Notification.EXTRA_TITLE).toString()
fun Notification.text(): String = extras.getCharSequence(Notification.EXTRA_TEXT)?.toString() ?: ""

@RunWith(RobolectricTestRunner::class)
@Config(shadows = [TestJobScheduler::class])
class JobServiceTest {
    private lateinit var app: Application
    private val scheduler get() = app.getSystemService(JobScheduler::class.java)!!

    @Before
    fun setUp() {
        TestSetup.before()
        app = RuntimeEnvironment.getApplication()
    }

    @After
    fun tearDown() = TestSetup.after()

    private fun queue(configJson: String, vararg sizes: Int, transfer: String = "job"): Pair<UploadEngine, List<java.io.File>> {
        val engine = engineOf(app)
        runBlocking { engine.setConfigJson(configJson) }
        val files = sizes.mapIndexed { i, size -> randomFile(app.cacheDir, "$transfer-$i.bin", size) }
        files.forEach { f -> runBlocking { engine.uploadFileJson(f.path, transfer, null, "{}") } }
        return engine to files
    }

    private fun pending(): JobInfo? = scheduler.getPendingJob(UploadJobs.JOB_ID)

    private fun uploadsJson(engine: UploadEngine, transfer: String) = runBlocking { engine.uploadsJson(null, transfer) }

    private fun started(service: RecordingJobService, params: JobParameters) {
        assertTrue(service.onStartJob(params))
    }

    @Test
    fun userInitiatedJobShowsItsNotificationAtOnceThenTheEnginesProgressAndFinishesWhenDrained(): Unit = GatedBackend().use { gated ->
        val (engine, files) = queue(gated.configJson(""","notification":{"title":"Sending {totalFiles} files","text":"{percentage}% of {totalSize}"}"""), 6 * MIB, 5 * MIB + 7)
        // The app's launcher activity, which a tap on the notification opens.
        val launcher = ResolveInfo().apply {
            activityInfo = ActivityInfo().apply { packageName = app.packageName; name = "com.example.MainActivity" }
        }
        shadowOf(app.packageManager).addResolveInfoForIntent(
            Intent(Intent.ACTION_MAIN).addCategory(Intent.CATEGORY_LAUNCHER).setPackage(app.packageName), launcher,
        )
        val controller = Robolectric.buildService(RecordingJobService::class.java).create()
        val service = controller.get()
        started(service, jobParameters(userInitiated = true))
        // Shown before onStartJob returned, without waiting for the engine.
        val first = service.shown.first()
        assertEquals("handed to the job (API 34+)", hasUserInitiatedJobs, first.second)
        if (hasNotificationChannels) assertEquals(UploadNotifications.CHANNEL_ID, first.first.channelId)
        assertTrue(first.first.flags and Notification.FLAG_ONGOING_EVENT != 0)

        // The backend holds the uploads: the job runs and shows the
        // engine's texts (no timing is asserted).
        val progress = eventually("the engine's notification") { service.shown.firstOrNull { it.first.title() == "Sending 2 files" } }
        assertEquals("0% of 11.5 MB", progress.first.text())
        assertNotNull("a tap opens the app", progress.first.contentIntent)
        assertFalse(shadowOf(service).isJobFinished)
        gated.open()
        eventually("the job to finish") { shadowOf(service).isJobFinished.takeIf { it } }
        assertFalse("a drained queue needs no reschedule", shadowOf(service).isRescheduleNeeded)
        idleMain()
        assertNull("and no fresh job", pending())
        val all = uploadsJson(engine, "job")
        val keys = Regex("\"key\":\"([^\"]+)\"").findAll(all).map { it.groupValues[1] }.toList()
        assertEquals(all, 2, keys.size)
        files.zip(keys).forEach { (f, k) -> assertArrayEquals(f.readBytes(), Backend.objectBytes(k)) }
        // The system heard what this job sent and what it would send in all:
        // never going back, never above the estimate, all of it at the end.
        val total = files.sumOf { it.length() }
        val reports = synchronized(service.bytes) { service.bytes.toList() }
        if (!hasUserInitiatedJobs) {
            // A regular job has no byte counts to report.
            assertTrue(reports.isEmpty())
            controller.destroy()
            return@use
        }
        assertTrue(reports.isNotEmpty())
        assertTrue(reports.toString(), reports.zipWithNext().all { (a, b) -> b.first >= a.first })
        assertTrue(reports.toString(), reports.all { (sent, estimate) -> sent <= estimate && estimate <= total })
        assertEquals(total to total, reports.last())
        controller.destroy()
    }

    @Test
    fun theSystemsStopEndsTheRunAtACheckpointAndAFreshJobContinues(): Unit = GatedBackend().use { gated ->
        val (engine, files) = queue(gated.configJson(), 5 * MIB + 1, transfer = "stop")
        val controller = Robolectric.buildService(RecordingJobService::class.java).create()
        val service = controller.get()
        // A regular job (API 24-33, and the fallback): a plain notification.
        val params = jobParameters(userInitiated = false)
        started(service, params)
        assertFalse(service.shown.first().second)
        val nm = shadowOf(app.getSystemService(NotificationManager::class.java)!!)
        assertNotNull(nm.getNotification(UploadNotifications.NOTIFICATION_ID))
        eventually("a backend call in flight") { gated.waiting.takeIf { it >= 1 } }

        // The system's stop: answered at once, the engine stops sending
        // (the app is off screen, no run is left) and a fresh job, not the
        // system's backoff, continues.
        assertFalse(service.onStopJob(params))
        assertNull("the regular job's notification goes with it", nm.getNotification(UploadNotifications.NOTIFICATION_ID))
        eventually("the engine to stop") {
            runBlocking { engine.lifecycleStatus() }.takeIf { it.runs.isEmpty() && it.mode == "stopped" }
        }
        val fresh = eventually("the fresh job") { idleMain(); pending() }
        assertFalse(fresh.userInitiated)
        assertTrue(fresh.isPersisted)
        assertEquals(0L, fresh.minLatencyMillis)
        assertFalse("onStopJob answered; the job does not finish itself", shadowOf(service).isJobFinished)
        controller.destroy()

        // The fresh job sends the file; nothing was lost.
        gated.open()
        val next = Robolectric.buildService(RecordingJobService::class.java).create()
        started(next.get(), jobParameters(userInitiated = false))
        eventually("the fresh job to finish") { shadowOf(next.get()).isJobFinished.takeIf { it } }
        val done = uploadsJson(engine, "stop")
        assertTrue(done, done.contains("\"state\":\"COMPLETED\""))
        val key = Regex("\"key\":\"([^\"]+)\"").find(done)!!.groupValues[1]
        assertArrayEquals(files[0].readBytes(), Backend.objectBytes(key))
        next.destroy()
    }

    @Test
    fun aUserInitiatedJobStoppedByTheSystemIsRescheduledAsOne(): Unit = GatedBackend().use { gated ->
        queue(gated.configJson(), 5 * MIB + 3, transfer = "uidt")
        val controller = Robolectric.buildService(RecordingJobService::class.java).create()
        val service = controller.get()
        val params = jobParameters(userInitiated = true)
        started(service, params)
        eventually("a backend call in flight") { gated.waiting.takeIf { it >= 1 } }
        if (android.os.Build.VERSION.SDK_INT >= 31) {
            params.setStopReason(JobParameters.STOP_REASON_CONSTRAINT_CONNECTIVITY, JobParameters.INTERNAL_STOP_REASON_CONSTRAINTS_NOT_SATISFIED, "test")
        }
        // Rescheduled by the system keeps it user-initiated (it could not be
        // scheduled as one again from the background). Below API 34 it was a
        // regular job: a fresh one follows.
        assertEquals(hasUserInitiatedJobs, service.onStopJob(params))
        if (hasUserInitiatedJobs) {
            idleMain()
            assertNull("no regular job replaces it", pending())
        } else {
            assertFalse(eventually("the fresh job") { idleMain(); pending() }.userInitiated)
        }
        controller.destroy()
    }

    @Test
    fun thePersonsStopPausesEveryUploadUntilResumed(): Unit = GatedBackend().use { gated ->
        val (engine, _) = queue(gated.configJson(), 5 * MIB + 5, 1000, transfer = "user")
        val controller = Robolectric.buildService(RecordingJobService::class.java).create()
        val service = controller.get()
        val params = jobParameters(userInitiated = true)
        started(service, params)
        eventually("a backend call in flight") { gated.waiting.takeIf { it >= 1 } }
        // From the Task Manager (Android 13+; the reason exists from API 31).
        if (!stopByUser(params)) {
            // No person's stop to tell: a system stop, and a fresh job.
            assertFalse(service.onStopJob(params))
            assertNotNull(eventually("the fresh job") { idleMain(); pending() })
            controller.destroy()
            gated.open()
            return@use
        }
        assertFalse(service.onStopJob(params))
        val paused = eventually("every upload paused by the person") {
            uploadsJson(engine, "user").takeIf { Regex("\"code\":\"user_stopped\"").findAll(it).count() == 2 }
        }
        assertTrue(paused, Regex("\"state\":\"PAUSED\"").findAll(paused).count() == 2)
        idleMain()
        assertNull("no job until the person resumes", pending())
        controller.destroy()

        // A resume (the person, in the app) schedules again.
        assertEquals(2, Regex("\"id\"").findAll(runBlocking { engine.resumeJson(null, "user") }).count())
        val kind = if (hasUserInitiatedJobs) UploadJobs.Kind.USER_INITIATED else UploadJobs.Kind.REGULAR
        assertEquals(kind, runBlocking { UploadJobs.forUserAction(app, engine, true) })
        gated.open()
    }

    @Test
    fun aTimeoutStopSchedulesAFreshJobWithALinearBackoff(): Unit = GatedBackend().use { gated ->
        queue(gated.configJson(), 5 * MIB + 9, transfer = "timeout")
        val controller = Robolectric.buildService(RecordingJobService::class.java).create()
        val service = controller.get()
        val params = jobParameters(userInitiated = false)
        started(service, params)
        eventually("a backend call in flight") { gated.waiting.takeIf { it >= 1 } }
        // Below API 31 no reason is given: the same system stop.
        if (android.os.Build.VERSION.SDK_INT >= 31) {
            params.setStopReason(JobParameters.STOP_REASON_TIMEOUT, JobParameters.INTERNAL_STOP_REASON_TIMEOUT, "test")
        }
        // "Reschedule" would count as a failure: the system's backoff doubles.
        assertFalse(service.onStopJob(params))
        val fresh = eventually("the fresh job") { idleMain(); pending() }
        assertFalse(fresh.userInitiated)
        assertTrue(fresh.isPersisted)
        assertEquals(JobInfo.BACKOFF_POLICY_LINEAR, fresh.backoffPolicy)
        assertEquals(UploadJobs.BACKOFF_MS, fresh.initialBackoffMillis)
        controller.destroy()
    }

    @Test
    fun aRunThatMustWaitEndsAndAFreshJobIsDelayedAsTheEngineSays(): Unit = GatedBackend().use { gated ->
        gated.open()
        // The backend asks for 45 s: longer than a job should idle.
        gated.retryAfterOnce = "45"
        val (engine, _) = queue(gated.configJson().replace("\"maxDelayMs\":50", "\"maxDelayMs\":60000"), 2000, transfer = "later")
        val controller = Robolectric.buildService(RecordingJobService::class.java).create()
        val service = controller.get()
        started(service, jobParameters(userInitiated = false))
        eventually("the job to finish") { shadowOf(service).isJobFinished.takeIf { it } }
        assertFalse("no reschedule through the system's backoff", shadowOf(service).isRescheduleNeeded)
        val fresh = eventually("the fresh job") { idleMain(); pending() }
        assertTrue("delayed as the server asked: ${fresh.minLatencyMillis}", fresh.minLatencyMillis in 30_000L..60_000L)
        assertTrue(fresh.isPersisted)
        assertTrue(uploadsJson(engine, "later").contains("\"state\":\"PENDING\""))
        controller.destroy()
    }

    @Test
    fun aJobWaitingForTheNetworkEndsAndAFreshJobKeepsTheConstraint() {
        val (engine, _) = queue(Backend.configJson(""","network":"unmetered""""), 1000, transfer = "w")
        engine.setNetworkState(true, true)
        val controller = Robolectric.buildService(RecordingJobService::class.java).create()
        val service = controller.get()
        started(service, jobParameters(userInitiated = false))
        eventually("the job to finish") { shadowOf(service).isJobFinished.takeIf { it } }
        assertFalse(shadowOf(service).isRescheduleNeeded)
        val fresh = eventually("the fresh job") { idleMain(); pending() }
        assertEquals(JobInfo.NETWORK_TYPE_UNMETERED, @Suppress("DEPRECATION") fresh.networkType)
        assertEquals(UploadJobs.NETWORK_RECHECK_MS, fresh.minLatencyMillis)
        controller.destroy()

        // A user-initiated job keeps its standing: it waits inside itself
        // for the network (the system stops it if its constraint fails),
        // and goes on when the network comes back. Below API 34 it was a
        // regular job: it ends, and a fresh job follows.
        scheduler.cancelAll()
        val uidt = Robolectric.buildService(RecordingJobService::class.java).create()
        started(uidt.get(), jobParameters(userInitiated = true))
        if (!hasUserInitiatedJobs) {
            eventually("the job to finish") { shadowOf(uidt.get()).isJobFinished.takeIf { it } }
            assertFalse(shadowOf(uidt.get()).isRescheduleNeeded)
            assertNotNull(eventually("the fresh job") { idleMain(); pending() })
            uidt.destroy()
            return
        }
        // Time for the job to meet the missing network first (were it
        // slower, the test would only prove less, never fail wrongly).
        Thread.sleep(1500)
        assertFalse("no jobFinished(true): the job waits", shadowOf(uidt.get()).isJobFinished)
        engine.setNetworkState(true, false)
        eventually("the job to finish") { shadowOf(uidt.get()).isJobFinished.takeIf { it } }
        assertFalse("done within the job", shadowOf(uidt.get()).isRescheduleNeeded)
        assertTrue(uploadsJson(engine, "w").contains("\"state\":\"COMPLETED\""))
        uidt.destroy()
    }

    @Test
    fun regularJobKeepsTheNetworkConstraintAndIsPersisted() {
        val (engine, files) = queue(Backend.configJson(""","network":"unmetered""""), 2 * MIB, transfer = "r")
        engine.setNetworkState(false, false)
        // Not a user action (start-up, boot): a regular job.
        assertEquals(UploadJobs.Kind.REGULAR, runBlocking { UploadJobs.ensureScheduled(app, engine) })
        val job = pending()!!
        assertFalse(job.userInitiated)
        assertTrue(job.isPersisted)
        assertEquals(JobInfo.NETWORK_TYPE_UNMETERED, @Suppress("DEPRECATION") job.networkType)
        assertUploadEstimate(files[0].length(), job)
        assertEquals(JobInfo.BACKOFF_POLICY_LINEAR, job.backoffPolicy)
        // A second request does not replace (and so stop) the scheduled job.
        assertEquals(UploadJobs.Kind.ALREADY_SCHEDULED, runBlocking { UploadJobs.ensureScheduled(app, engine) })
        // The boot receiver is on while work is queued.
        val boot = ComponentName(app, BootReceiver::class.java)
        assertEquals(PackageManager.COMPONENT_ENABLED_STATE_ENABLED, app.packageManager.getComponentEnabledSetting(boot))
    }

    @Test
    fun aRefusedUserInitiatedJobFallsBackToTheRegularJob() {
        val (engine, _) = queue(Backend.configJson(), 100, transfer = "x")
        engine.setNetworkState(false, false)
        // The system refuses it (the app left the screen before it asked, say).
        TestJobScheduler.refuseUserInitiated = true
        assertEquals(UploadJobs.Kind.REGULAR, runBlocking { UploadJobs.forUserAction(app, engine, true) })
        val job = pending()!!
        assertFalse(job.userInitiated)
        assertTrue(job.isPersisted)
        // Even the regular job refused: nothing throws, and the next action tries again.
        scheduler.cancelAll()
        shadowOf(scheduler).failOnJob(UploadJobs.JOB_ID)
        assertEquals(UploadJobs.Kind.NOTHING_TO_DO, runBlocking { UploadJobs.forUserAction(app, engine, true) })
    }

    @Test
    fun revokedLongRunningJobsFallBackToARegularJobOrTheAppsForegroundService() {
        TestJobScheduler.allowUserInitiated = false
        val (engine, _) = queue(Backend.configJson(), 4000, transfer = "f")
        engine.setNetworkState(false, false)
        assertEquals(UploadJobs.Kind.REGULAR, runBlocking { UploadJobs.forUserAction(app, engine, true) })
        assertFalse(pending()!!.userInitiated)

        // The app opted in to the dataSync service: a user action starts it.
        scheduler.cancel(UploadJobs.JOB_ID)
        val declared = ServiceInfo().apply {
            packageName = app.packageName
            name = UploadForegroundService::class.java.name
        }.withForegroundType(ServiceInfo.FOREGROUND_SERVICE_TYPE_DATA_SYNC)
        shadowOf(app.packageManager).addOrUpdateService(declared)
        shadowOf(app).grantPermissions("android.permission.FOREGROUND_SERVICE", "android.permission.FOREGROUND_SERVICE_DATA_SYNC")
        assertEquals(UploadJobs.Kind.FOREGROUND_SERVICE, runBlocking { UploadJobs.forUserAction(app, engine, true) })
        assertEquals(UploadForegroundService::class.java.name, shadowOf(app).nextStartedService.component!!.className)
        // A persisted regular job backs the service up (it takes over when the service stops).
        val backup = pending()
        assertNotNull("a backup job with the service", backup)
        assertFalse(backup!!.userInitiated)
        assertTrue(backup.isPersisted)
        // Not visible (a background resume): a regular job, never the service.
        scheduler.cancel(UploadJobs.JOB_ID)
        assertEquals(UploadJobs.Kind.REGULAR, runBlocking { UploadJobs.forUserAction(app, engine, false) })
        assertNull(shadowOf(app).nextStartedService)
        // A declaration without the dataSync type is not used (types exist from API 29).
        if (android.os.Build.VERSION.SDK_INT < 29) return
        scheduler.cancel(UploadJobs.JOB_ID)
        shadowOf(app.packageManager).addOrUpdateService(declared.withForegroundType(0))
        assertFalse(UploadJobs.foregroundServiceDeclared(app))
        assertEquals(UploadJobs.Kind.REGULAR, runBlocking { UploadJobs.forUserAction(app, engine, true) })
    }

    @Test
    fun nothingIsScheduledWhenNoWorkRemains() {
        val engine = engineOf(app)
        runBlocking { engine.setConfigJson(Backend.configJson()) }
        assertEquals(UploadJobs.Kind.NOTHING_TO_DO, runBlocking { UploadJobs.ensureScheduled(app, engine) })
        assertNull(pending())
        val boot = ComponentName(app, BootReceiver::class.java)
        assertEquals("the boot receiver stays off", PackageManager.COMPONENT_ENABLED_STATE_DEFAULT, app.packageManager.getComponentEnabledSetting(boot))
    }
}
