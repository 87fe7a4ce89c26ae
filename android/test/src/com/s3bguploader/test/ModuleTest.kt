package com.s3bguploader.test

import android.app.Application
import android.app.job.JobInfo
import android.app.job.JobScheduler
import org.robolectric.RuntimeEnvironment
import com.facebook.react.bridge.JavaOnlyMap
import com.facebook.react.bridge.ReadableArray
import com.facebook.react.bridge.ReadableMap
import com.s3bguploader.NativeS3BgUploaderSpec
import com.s3bguploader.S3BgUploaderModule
import com.s3bguploader.S3BgUploaderPackage
import com.s3bguploader.S3BgUploaderRuntime
import com.s3bguploader.UploadJobService
import com.s3bguploader.UploadJobs
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
import org.robolectric.Shadows.shadowOf
import org.robolectric.annotation.Config
import java.io.File
import java.util.Collections

/** The spec's object shapes (js/src/NativeS3BgUploader.ts), field for field. */
val NATIVE_UPLOAD_KEYS = setOf(
    "id", "transferId", "path", "fileName", "fileHash", "size", "state", "key", "uploadId", "partSize",
    "partsTotal", "partsDone", "uploadedBytes", "error", "createdAtMs", "updatedAtMs",
)
val NATIVE_SUMMARY_KEYS = setOf(
    "uploads", "pending", "initialized", "running", "paused", "completed", "failed", "cancelled",
    "totalBytes", "uploadedBytes", "transfers", "completedTransfers",
)
val NATIVE_PROGRESS_KEYS = setOf("id", "transferId", "uploadedBytes", "totalBytes", "partsDone", "partsTotal")

fun ReadableMap.keys(): Set<String> = toHashMap().keys

@RunWith(RobolectricTestRunner::class)
@Config(shadows = [TestJobScheduler::class])
class ModuleTest {
    private lateinit var app: Application
    private lateinit var module: S3BgUploaderModule
    private val events: MutableList<Pair<String, ReadableMap>> = Collections.synchronizedList(ArrayList())

    @Before
    fun setUp() {
        TestSetup.before()
        app = RuntimeEnvironment.getApplication()
        module = S3BgUploaderModule(TestReactContext(app))
        module.eventSink = { name, map -> events.add(name to map) }
        // On screen: the engine sends in the foreground.
        Screen.show()
        module.initialize()
    }

    @After
    fun tearDown() {
        module.invalidate()
        TestSetup.after()
    }

    private fun call(block: (TestPromise) -> Unit): TestPromise = TestPromise().also(block)

    private fun uploadsOf(id: Double): ReadableMap =
        (call { module.getUploads(id, null, it) }.resolved() as ReadableArray).maps().single()

    private fun settled(id: Double): ReadableMap = eventually("upload $id to settle") {
        uploadsOf(id).takeIf { it.str("state") in setOf("COMPLETED", "FAILED", "CANCELLED") }
    }

    @Test
    fun packageRegistersTheTurboModule() {
        val pkg = S3BgUploaderPackage()
        val info = pkg.getReactModuleInfoProvider().getReactModuleInfos()[NativeS3BgUploaderSpec.NAME]!!
        assertEquals("S3BgUploader", info.name)
        assertTrue(info.isTurboModule)
        assertEquals(S3BgUploaderModule::class.java.name, info.className)
        assertTrue(pkg.getModule("S3BgUploader", TestReactContext(app)) is S3BgUploaderModule)
        assertNull(pkg.getModule("Other", TestReactContext(app)))
    }

    @Test
    fun methodsResolveWithTheSpecShapesAndRejectWithEngineCodes() {
        // Before any configuration: uploadFile is refused with the engine's code.
        val f = randomFile(app.cacheDir, "clip.bin", 5 * MIB + 321)
        val unconfigured = call { module.uploadFile(f.path, "album", null, "{}", it) }.rejection()
        assertEquals("invalid_config", unconfigured.first)

        val bad = call { module.setConfig("""{"startUploadUrl":"nope"}""", it) }.rejection()
        assertEquals("invalid_config", bad.first)
        assertTrue(bad.second, bad.second.isNotEmpty())
        assertNull(call { module.setConfig(Backend.configJson(), it) }.resolved())

        val added = call { module.uploadFile(f.path, "album", "clip.mp4", """{"album":"x"}""", it) }.resolved() as ReadableMap
        assertEquals(NATIVE_UPLOAD_KEYS, added.keys())
        assertEquals("clip.mp4", added.str("fileName"))
        assertEquals("album", added.str("transferId"))
        assertEquals(f.length().toDouble(), added.num("size"), 0.0)
        val id = added.num("id")

        val done = settled(id)
        assertEquals("COMPLETED", done.str("state"))
        assertTrue(done.isNull("error"))
        assertArrayEquals(f.readBytes(), Backend.objectBytes(done.str("key")!!))

        val summary = call { module.getSummary("album", it) }.resolved() as ReadableMap
        assertEquals(NATIVE_SUMMARY_KEYS, summary.keys())
        assertEquals(1.0, summary.num("completed"), 0.0)
        assertEquals(f.length().toDouble(), summary.num("uploadedBytes"), 0.0)

        assertEquals("invalid_argument", call { module.pause(1.5, null, it) }.rejection().first)
        assertEquals(0, (call { module.pause(null, "album", it) }.resolved() as ReadableArray).size())
        assertEquals(0, (call { module.resume(id, null, it) }.resolved() as ReadableArray).size())
        assertEquals(0, (call { module.cancel(id, null, it) }.resolved() as ReadableArray).size())
        assertEquals(1.0, call { module.forget(id, null, it) }.resolved() as Double, 0.0)
        assertEquals(0, (call { module.getUploads(null, null, it) }.resolved() as ReadableArray).size())
    }

    @Test
    fun eventsArriveAsMapsWhileTheModuleLives() {
        assertNull(call { module.setConfig(Backend.configJson(), it) }.resolved())
        val f = randomFile(app.cacheDir, "events.bin", 6 * MIB)
        val id = (call { module.uploadFile(f.path, "ev", null, "{}", it) }.resolved() as ReadableMap).num("id")
        assertEquals("COMPLETED", settled(id).str("state"))
        val seen = eventually("the COMPLETED event") {
            synchronized(events) { events.toList() }.takeIf { list ->
                list.any { it.first == "onStateChange" && it.second.str("state") == "COMPLETED" }
            }
        }
        val states = seen.filter { it.first == "onStateChange" }.map { it.second }
        assertTrue(states.all { it is JavaOnlyMap && it.keys() == NATIVE_UPLOAD_KEYS })
        assertEquals("PENDING", states.first { it.num("id") == id }.str("state"))
        val progress = seen.filter { it.first == "onProgress" }.map { it.second }
        assertTrue("no progress event", progress.isNotEmpty())
        assertTrue(progress.all { it.keys() == NATIVE_PROGRESS_KEYS })
        assertTrue(seen.all { it.first == "onStateChange" || it.first == "onProgress" })

        // Invalidated (reload, teardown): no more events from this module.
        module.invalidate()
        val before = events.size
        val engine = engineOf(app)
        val g = randomFile(app.cacheDir, "after.bin", 1000)
        runBlocking { engine.uploadFileJson(g.path, "ev", null, "{}") }
        eventually("the second upload") {
            runBlocking { engine.summaryJson("ev") }.takeIf { it.contains("\"completed\":2") }
        }
        assertEquals(before, events.size)
        module = S3BgUploaderModule(TestReactContext(app)).also { it.eventSink = { _, _ -> } }
        module.initialize()
    }

    @Test
    fun uploadFileSchedulesAUserInitiatedJobWithThePolicyAndEstimate() {
        assertNull(call { module.setConfig(Backend.configJson(""","network":"unmetered""""), it) }.resolved())
        // On a metered network an unmetered-only upload waits, so the job is
        // scheduled with work left whatever the machine's speed.
        engineOf(app).setNetworkState(true, true)
        val f = randomFile(app.cacheDir, "job.bin", 7 * MIB + 5)
        call { module.uploadFile(f.path, "job", null, "{}", it) }.resolved()
        val scheduler = app.getSystemService(JobScheduler::class.java)!!
        val job: JobInfo = eventually("the job") { scheduler.getPendingJob(UploadJobs.JOB_ID) }
        // User-initiated from API 34; a regular, persisted job below.
        assertEquals("user-initiated", hasUserInitiatedJobs, job.userInitiated)
        assertEquals(JobInfo.NETWORK_TYPE_UNMETERED, @Suppress("DEPRECATION") job.networkType)
        assertUploadEstimate(f.length(), job)
        assertEquals(UploadJobService::class.java.name, job.service.className)
        assertEquals("a user-initiated job is not persisted", !hasUserInitiatedJobs, job.isPersisted)
    }

    @Test
    fun callsNotAwaitedKeepTheirOrder(): Unit = GatedBackend().use { gated ->
        // Fired one after the other without waiting, as JavaScript may (the
        // backend holds the upload, so only the order decides).
        val f = randomFile(app.cacheDir, "order.bin", 3000)
        val config = call { module.setConfig(gated.configJson(), it) }
        val added = call { module.uploadFile(f.path, "order", null, "{}", it) }
        val paused = call { module.pause(null, "order", it) }
        assertNull(config.resolved())
        val id = (added.resolved() as ReadableMap).num("id")
        // The pause came after the add: it found the upload.
        val changed = (paused.resolved() as ReadableArray).maps()
        assertEquals(listOf(id), changed.map { it.num("id") })
        assertEquals("PAUSED", uploadsOf(id).str("state"))
    }

    @Test
    fun theAppsVisibilityIsTheEnginesAppStateAndNothingIsSentOffScreenWithoutAJob(): Unit = GatedBackend().use { gated ->
        val engine = engineOf(app)
        assertEquals(com.s3bguploader.core.AppState.FOREGROUND, runBlocking { engine.lifecycleStatus() }.state)
        assertEquals("direct", runBlocking { engine.lifecycleStatus() }.mode)
        Screen.leave()
        val off = runBlocking { engine.lifecycleStatus() }
        assertEquals(com.s3bguploader.core.AppState.BACKGROUND, off.state)
        assertEquals("stopped", off.mode)
        // Off screen: the person's action schedules a regular job, and the
        // engine sends nothing until it runs.
        gated.open()
        assertNull(call { module.setConfig(gated.configJson(), it) }.resolved())
        val f = randomFile(app.cacheDir, "off.bin", 5 * MIB + 11)
        val id = (call { module.uploadFile(f.path, "off", null, "{}", it) }.resolved() as ReadableMap).num("id")
        val job = app.getSystemService(JobScheduler::class.java)!!.getPendingJob(UploadJobs.JOB_ID)!!
        assertFalse(job.userInitiated)
        assertEquals("stopped", runBlocking { engine.lifecycleStatus() }.mode)
        assertEquals(0, gated.waiting)
        assertEquals("PENDING", uploadsOf(id).str("state"))
        // Back on screen: it is sent.
        Screen.show()
        assertEquals("COMPLETED", settled(id).str("state"))
        assertTrue(gated.waiting >= 1)
    }

    @Test
    fun aDamagedQueueRejectsEveryCallWithItsCodeUntilSetAside() {
        // A queue file that is not a database, found at the next launch
        // (written as that open begins: nothing can open a healthy one first).
        val damaged = java.util.concurrent.atomic.AtomicBoolean(false)
        S3BgUploaderRuntime.beforeOpenForTests = {
            if (damaged.compareAndSet(false, true)) {
                val db = S3BgUploaderRuntime.databaseFile(app)
                db.parentFile!!.mkdirs()
                // Without the previous engine's journal, whose pages SQLite
                // would otherwise read over the damaged file.
                listOf("-wal", "-shm").forEach { File(db.path + it).delete() }
                db.writeBytes(ByteArray(64 * 1024) { 0x5a })
            }
        }
        module.invalidate()
        TestSetup.after()
        module = S3BgUploaderModule(TestReactContext(app)).also { it.eventSink = { name, map -> events.add(name to map) } }
        Screen.reset()
        Screen.show()
        // Nothing throws into React Native, the job or the boot receiver.
        module.initialize()
        val rejected = call { module.getSummary(null, it) }.rejection()
        assertEquals("database_corrupt", rejected.first)
        assertEquals("database_corrupt", call { module.setConfig(Backend.configJson(), it) }.rejection().first)
        val job = Robolectric.buildService(RecordingJobService::class.java).create()
        assertTrue(job.get().onStartJob(jobParameters(userInitiated = false)))
        eventually("the job to finish") { shadowOf(job.get()).isJobFinished.takeIf { it } }
        assertFalse("a damaged queue needs the app, not a retry", shadowOf(job.get()).isRescheduleNeeded)
        job.destroy()
        com.s3bguploader.BootReceiver().onReceive(app, android.content.Intent(android.content.Intent.ACTION_BOOT_COMPLETED))

        // The app sets it aside: kept for inspection, an empty queue opens.
        val kept = call { module.setAsideQueue(it) }.resolved() as String
        assertTrue(kept, kept.contains("queue.db.corrupt-"))
        assertTrue(java.io.File(kept).readBytes().all { it == 0x5a.toByte() })
        assertEquals("invalid_argument", call { module.setAsideQueue(it) }.rejection().first)
        assertNull(call { module.setConfig(Backend.configJson(), it) }.resolved())
        val f = randomFile(app.cacheDir, "fresh.bin", 4000)
        val id = (call { module.uploadFile(f.path, "fresh", null, "{}", it) }.resolved() as ReadableMap).num("id")
        assertEquals("COMPLETED", settled(id).str("state"))
        // Events flow from the new queue.
        eventually("an event from the new queue") { synchronized(events) { events.any { it.second.str("transferId") == "fresh" } }.takeIf { it } }
    }

    @Test
    fun noEntryPointWaitsForTheEngineToOpen() {
        // The open is held (a slow device with a big queue): every entry
        // point must return while it is.
        val release = java.util.concurrent.CountDownLatch(1)
        // Set only once the hold is over: an entry point that waited for
        // the engine would return after it.
        val opened = java.util.concurrent.atomic.AtomicBoolean(false)
        S3BgUploaderRuntime.beforeOpenForTests = {
            release.await(60, java.util.concurrent.TimeUnit.SECONDS)
            opened.set(true)
        }
        module.invalidate()
        TestSetup.after()
        val returned = mutableListOf<String>()
        module = S3BgUploaderModule(TestReactContext(app))
        module.initialize()
        val summary = call { module.getSummary(null, it) }
        if (!opened.get()) returned.add("module")
        val jobs = Robolectric.buildService(RecordingJobService::class.java).create()
        val params = jobParameters(userInitiated = true)
        assertTrue(jobs.get().onStartJob(params))
        assertFalse(jobs.get().onStopJob(jobParameters(userInitiated = false)))
        if (!opened.get()) returned.add("job")
        val fgs = Robolectric.buildService(com.s3bguploader.UploadForegroundService::class.java).create().startCommand(0, 1)
        if (!opened.get()) returned.add("service")
        com.s3bguploader.BootReceiver().onReceive(app, android.content.Intent(android.content.Intent.ACTION_BOOT_COMPLETED))
        if (!opened.get()) returned.add("receiver")
        assertEquals(listOf("module", "job", "service", "receiver"), returned)
        assertFalse("nothing settled before the engine opened", summary.settledTimes > 0)
        release.countDown()
        assertEquals(NATIVE_SUMMARY_KEYS, (summary.resolved() as ReadableMap).keys())
        jobs.destroy()
        fgs.destroy()
    }

    @Test
    fun aNewNetworkPolicyReschedulesThePendingJobWithItsConstraint(): Unit = GatedBackend().use { gated ->
        assertNull(call { module.setConfig(gated.configJson(), it) }.resolved())
        Screen.leave()
        val f = randomFile(app.cacheDir, "policy.bin", 3000)
        call { module.uploadFile(f.path, "policy", null, "{}", it) }.resolved()
        val scheduler = app.getSystemService(JobScheduler::class.java)!!
        assertEquals(JobInfo.NETWORK_TYPE_ANY, @Suppress("DEPRECATION") scheduler.getPendingJob(UploadJobs.JOB_ID)!!.networkType)
        assertNull(call { module.setConfig(gated.configJson(""","network":"unmetered""""), it) }.resolved())
        assertEquals(JobInfo.NETWORK_TYPE_UNMETERED, @Suppress("DEPRECATION") scheduler.getPendingJob(UploadJobs.JOB_ID)!!.networkType)
        gated.open()
    }
}
