package com.s3bguploader.test

import android.app.Application
import android.app.Notification
import android.app.NotificationManager
import android.app.job.JobInfo
import android.app.job.JobParameters
import android.app.job.JobScheduler
import android.content.Intent
import android.content.pm.ActivityInfo
import android.content.pm.ResolveInfo
import com.s3bguploader.S3BgUploaderRuntime
import com.s3bguploader.UploadJobService
import com.s3bguploader.UploadJobs
import com.s3bguploader.UploadNotifications
import com.s3bguploader.core.IdleReason
import kotlinx.coroutines.runBlocking
import org.junit.After
import org.junit.Assert.assertArrayEquals
import org.junit.Assert.assertEquals
import org.junit.Assert.assertFalse
import org.junit.Assert.assertNotNull
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

    override fun reportBytes(params: JobParameters, uploaded: Long, remaining: Long) {
        bytes.add(uploaded to remaining)
        super.reportBytes(params, uploaded, remaining)
    }

    override fun showNotification(params: JobParameters, notification: Notification, userInitiated: Boolean) {
        shown.add(notification to userInitiated)
        super.showNotification(params, notification, userInitiated)
    }
}

@RunWith(RobolectricTestRunner::class)
class JobServiceTest {
    private lateinit var app: Application

    @Before
    fun setUp() {
        TestSetup.before()
        app = RuntimeEnvironment.getApplication()
    }

    @After
    fun tearDown() = TestSetup.after()

    private fun Notification.title(): String = extras.getCharSequence(Notification.EXTRA_TITLE).toString()
    private fun Notification.text(): String = extras.getCharSequence(Notification.EXTRA_TEXT).toString()

    @Test
    fun userInitiatedJobPostsItsNotificationUpdatesItAndFinishesWhenDrained(): Unit = GatedBackend().use { gated ->
        val engine = S3BgUploaderRuntime.engine(app)
        runBlocking {
            engine.setConfigJson(gated.configJson(""","notification":{"title":"Sending {totalFiles} files","text":"{percentage}% of {totalSize}"}"""))
        }
        engine.setNetworkState(true, false)
        val files = listOf(randomFile(app.cacheDir, "a.bin", 6 * MIB), randomFile(app.cacheDir, "b.bin", 5 * MIB + 7))
        files.forEach { f -> runBlocking { engine.uploadFileJson(f.path, "job", null, "{}") } }

        // The app's launcher activity, which a tap on the notification opens.
        val launcher = ResolveInfo().apply {
            activityInfo = ActivityInfo().apply { packageName = app.packageName; name = "com.example.MainActivity" }
        }
        shadowOf(app.packageManager).addResolveInfoForIntent(
            Intent(Intent.ACTION_MAIN).addCategory(Intent.CATEGORY_LAUNCHER).setPackage(app.packageName), launcher,
        )
        val controller = Robolectric.buildService(RecordingJobService::class.java).create()
        val service = controller.get()
        val params = jobParameters(userInitiated = true)
        assertTrue(service.onStartJob(params))
        // The first notification is shown before onStartJob returns.
        val first = service.shown.first()
        assertEquals("handed to the job (API 34+), else posted", hasUserInitiatedJobs, first.second)
        assertEquals("Sending 2 files", first.first.title())
        assertEquals("0% of 11.5 MB", first.first.text())
        if (hasNotificationChannels) assertEquals(UploadNotifications.CHANNEL_ID, first.first.channelId)
        assertTrue(first.first.flags and Notification.FLAG_ONGOING_EVENT != 0)
        assertNotNull("a tap opens the app", first.first.contentIntent)
        if (hasNotificationChannels) {
            val nm = app.getSystemService(NotificationManager::class.java)!!
            assertEquals(NotificationManager.IMPORTANCE_LOW, nm.getNotificationChannel(UploadNotifications.CHANNEL_ID).importance)
        }

        // The backend holds the uploads: the job keeps running and updates
        // its notification (at most once a second; no timing is asserted).
        eventually("a notification update") { service.shown.size.takeIf { it >= 2 } }
        assertFalse(shadowOf(service).isJobFinished)
        gated.open()
        eventually("the job to finish") { shadowOf(service).isJobFinished.takeIf { it } }
        assertFalse("a drained queue needs no reschedule", shadowOf(service).isRescheduleNeeded)
        val summary = runBlocking { engine.summaryJson("job") }
        assertTrue(summary, summary.contains("\"completed\":2"))
        val all = runBlocking { engine.uploadsJson(null, "job") }
        val keys = Regex("\"key\":\"([^\"]+)\"").findAll(all).map { it.groupValues[1] }.toList()
        assertEquals(all, 2, keys.size)
        files.zip(keys).forEach { (f, k) -> assertArrayEquals(f.readBytes(), Backend.objectBytes(k)) }
        assertTrue(service.shown.all { it.first.title() == "Sending 2 files" && it.second == hasUserInitiatedJobs })
        // Transferred and remaining bytes went to the system with each update;
        // while the backend held the uploads nothing was sent yet.
        val total = files.sumOf { it.length() }
        if (hasUserInitiatedJobs) {
            assertTrue(service.bytes.isNotEmpty())
            assertEquals(0L to total, service.bytes.first())
            assertTrue(service.bytes.all { (up, left) -> up in 0..total && left in 0..total })
        } else {
            assertTrue("byte counts go to a user-initiated job only", service.bytes.isEmpty())
        }
        controller.destroy()
    }

    @Test
    fun onStopJobSuspendsTheEngineAndAsksForRescheduling(): Unit = GatedBackend().use { gated ->
        val engine = S3BgUploaderRuntime.engine(app)
        runBlocking { engine.setConfigJson(gated.configJson()) }
        engine.setNetworkState(true, false)
        val f = randomFile(app.cacheDir, "stop.bin", 5 * MIB + 1)
        runBlocking { engine.uploadFileJson(f.path, "stop", null, "{}") }

        val controller = Robolectric.buildService(RecordingJobService::class.java).create()
        val service = controller.get()
        // A regular job (API 24-33 and the fallback): the notification is posted plainly.
        val params = jobParameters(userInitiated = false)
        assertTrue(service.onStartJob(params))
        assertFalse(service.shown.first().second)
        val nm = shadowOf(app.getSystemService(NotificationManager::class.java)!!)
        assertNotNull(nm.getNotification(UploadNotifications.NOTIFICATION_ID))
        // The upload is in flight (its backend call is held at the gate).
        eventually("a backend call in flight") { gated.waiting.takeIf { it >= 1 } }

        assertTrue("the system's stop asks for a reschedule", service.onStopJob(params))
        val status = runBlocking { engine.status() }
        assertFalse("the engine is suspended", status.running)
        assertEquals(1u, status.active)
        assertFalse("onStopJob answered; the job does not finish itself", shadowOf(service).isJobFinished)

        // The user's stop from the Task Manager: suspended, no reschedule.
        val second = jobParameters(userInitiated = true)
        assertTrue(service.onStartJob(second))
        // Below API 31 no stop reason exists: every stop asks for a reschedule.
        val byUser = stopByUser(second)
        assertEquals(!byUser, service.onStopJob(second))
        assertFalse(runBlocking { engine.status() }.running)

        // Nothing was lost: a later run sends the file.
        gated.open()
        assertEquals(IdleReason.IDLE, runBlocking { engine.runUntilIdle() })
        assertTrue(runBlocking { engine.summaryJson("stop") }.contains("\"completed\":1"))
        controller.destroy()
    }

    @Test
    fun aJobWaitingForTheNetworkFinishesWithAReschedule() {
        val engine = S3BgUploaderRuntime.engine(app)
        runBlocking { engine.setConfigJson(Backend.configJson(""","network":"unmetered"""")) }
        engine.setNetworkState(true, true)
        runBlocking { engine.uploadFileJson(randomFile(app.cacheDir, "w.bin", 1000).path, "w", null, "{}") }
        val controller = Robolectric.buildService(RecordingJobService::class.java).create()
        val service = controller.get()
        assertTrue(service.onStartJob(jobParameters(userInitiated = false)))
        eventually("the job to finish") { shadowOf(service).isJobFinished.takeIf { it } }
        assertTrue(shadowOf(service).isRescheduleNeeded)
        controller.destroy()
    }

    @Test
    fun regularJobKeepsTheNetworkConstraintAndIsPersisted() {
        val engine = S3BgUploaderRuntime.engine(app)
        runBlocking { engine.setConfigJson(Backend.configJson(""","network":"unmetered"""")) }
        engine.setNetworkState(false, false)
        val f = randomFile(app.cacheDir, "r.bin", 2 * MIB)
        runBlocking { engine.uploadFileJson(f.path, "r", null, "{}") }
        // Not a user action (start-up, boot): a regular job.
        val kind = runBlocking { UploadJobs.schedule(app, engine, userAction = false, visible = false) }
        assertEquals(UploadJobs.Kind.REGULAR, kind)
        val job = app.getSystemService(JobScheduler::class.java)!!.getPendingJob(UploadJobs.JOB_ID)!!
        assertFalse(job.userInitiated)
        assertTrue(job.isPersisted)
        assertEquals(JobInfo.NETWORK_TYPE_UNMETERED, @Suppress("DEPRECATION") job.networkType)
        assertUploadEstimate(f.length(), job)
        // A second request does not replace (and so stop) the scheduled job.
        assertEquals(UploadJobs.Kind.ALREADY_SCHEDULED, runBlocking { UploadJobs.schedule(app, engine, userAction = false, visible = false) })
    }

    @Test
    fun revokedLongRunningJobsFallBackToARegularJobOrTheAppsForegroundService() {
        UploadJobs.canRunUserInitiatedJobs = { false }
        val engine = S3BgUploaderRuntime.engine(app)
        runBlocking { engine.setConfigJson(Backend.configJson()) }
        engine.setNetworkState(false, false)
        runBlocking { engine.uploadFileJson(randomFile(app.cacheDir, "f.bin", 4000).path, "f", null, "{}") }
        assertEquals(UploadJobs.Kind.REGULAR, runBlocking { UploadJobs.schedule(app, engine, userAction = true, visible = true) })
        val scheduler = app.getSystemService(JobScheduler::class.java)!!
        assertFalse(scheduler.getPendingJob(UploadJobs.JOB_ID)!!.userInitiated)

        // The app opted in to the dataSync service: a user action starts it.
        scheduler.cancel(UploadJobs.JOB_ID)
        shadowOf(app.packageManager).addOrUpdateService(
            android.content.pm.ServiceInfo().apply { packageName = app.packageName; name = com.s3bguploader.UploadForegroundService::class.java.name },
        )
        shadowOf(app).grantPermissions("android.permission.FOREGROUND_SERVICE", "android.permission.FOREGROUND_SERVICE_DATA_SYNC")
        assertEquals(UploadJobs.Kind.FOREGROUND_SERVICE, runBlocking { UploadJobs.schedule(app, engine, userAction = true, visible = true) })
        assertEquals(com.s3bguploader.UploadForegroundService::class.java.name, shadowOf(app).nextStartedService.component!!.className)
        // A persisted regular job backs the service up (it takes over when the service stops).
        val backup = scheduler.getPendingJob(UploadJobs.JOB_ID)
        assertTrue("a backup job with the service", backup != null)
        assertFalse(backup!!.userInitiated)
        assertTrue(backup.isPersisted)
        // Not visible (a background resume): a regular job, never the service.
        scheduler.cancel(UploadJobs.JOB_ID)
        assertEquals(UploadJobs.Kind.REGULAR, runBlocking { UploadJobs.schedule(app, engine, userAction = true, visible = false) })
        assertEquals(null, shadowOf(app).nextStartedService)
    }

    @Test
    fun nothingIsScheduledWhenNoWorkRemains() {
        val engine = S3BgUploaderRuntime.engine(app)
        runBlocking { engine.setConfigJson(Backend.configJson()) }
        assertEquals(UploadJobs.Kind.NOTHING_TO_DO, runBlocking { UploadJobs.schedule(app, engine, userAction = true, visible = true) })
        assertEquals(null, app.getSystemService(JobScheduler::class.java)!!.getPendingJob(UploadJobs.JOB_ID))
    }

    @Test
    fun aRefusedJobIsReportedNotSwallowed() {
        val engine = S3BgUploaderRuntime.engine(app)
        runBlocking { engine.setConfigJson(Backend.configJson()) }
        engine.setNetworkState(false, false)
        runBlocking { engine.uploadFileJson(randomFile(app.cacheDir, "x.bin", 100).path, "x", null, "{}") }
        val scheduler = app.getSystemService(JobScheduler::class.java)!!
        shadowOf(scheduler).failOnJob(UploadJobs.JOB_ID)
        assertEquals(UploadJobs.Kind.NOTHING_TO_DO, runBlocking { UploadJobs.schedule(app, engine, userAction = true, visible = true) })
    }
}
